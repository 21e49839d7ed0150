"""Parameters: read task_esc50.yaml, lay a set over the defaults, check every key and type, hash stages. One
module per job: parameters.py (the file, its sets, --param), schema.py (what a value must be), hashing.py (the
cache folders' names). The names the rest of the package uses are these."""
from .hashing import (COUNTS, NEUTRAL, NOT_HASHED, STAGE_SECTIONS, Within, own_family, params_hash,  # noqa: F401
                      stage_hash, text_hash)
from .parameters import (Parameters, deep_merge, get_path, load_yaml, parse_param_override,  # noqa: F401
                         set_path)
from .schema import (CHOICES, FREE_FORM, RANGES, RAW_AUDIO_FORMATS, TFLITE_FEATURE_FORMATS,  # noqa: F401
                     TFLITE_FORMATS, check_against_schema, check_ranges, did_you_mean)
