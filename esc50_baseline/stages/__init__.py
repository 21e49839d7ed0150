"""The stages of a run, in the DCASE style: each reads the previous stage's cached output, writes its own to a
folder named by the hash of the parameters it depends on, and skips work already done. One module per stage; the
task scripts' stage tables list them in order. A stage knows the run (its RunContext); what it computes is done
by the toolkits below (data, features, models, training, evaluation, tflite, detection), which take plain values.

    features.py    do_feature_extraction, do_feature_normalization
    learning.py    do_learning
    testing.py     do_testing
    evaluation.py  do_evaluation, do_model_size_calculation
    tflite.py      do_tflite_conversion, do_tflite_testing, do_tflite_evaluation, do_tflite_micro
    detection.py   do_sed_evaluation
    ensemble.py    an ensemble set's own stages
    predict.py     --predict, and the trained set as a scorer of audio for detection
    detect.py      --detect
    common.py      what the stages share: headings, staleness, the prediction files
"""
