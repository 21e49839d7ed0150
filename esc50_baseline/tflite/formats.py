"""The TFLite formats a float model is converted to, by what the model takes."""
FEATURE_FORMATS = ("float32", "float16", "dynamic_int8", "int8")  # models that take log-mel features
RAW_AUDIO_FORMATS = ("raw_float32", "raw_float16", "raw_int8")  # models that take samples: the front end inside
FORMATS = FEATURE_FORMATS + RAW_AUDIO_FORMATS
