#!/usr/bin/env python
"""Model size and complexity, the DCASE way: parameters, non-zero parameters and their bytes, layer by
layer, plus multiply-accumulates (MACs) per inference, and whether the model fits the DCASE
low-complexity limits (128 KB of non-zero parameters, 30 M MACs).

    python model_size_calculation.py system/task_esc50/learner/<hash>/model_fold_1.keras

The counting lives in esc50_baseline/models/complexity.py (Keras) and esc50_baseline/tflite/size.py
(TFLite); the task scripts report it for every trained model.
"""
import os
import sys


def report_for_file(path):
    if path.endswith(".keras"):
        from esc50_baseline.models.complexity import keras_file_report
        return keras_file_report(path)
    if path.endswith(".tflite"):
        from esc50_baseline.tflite.size import tflite_size_report
        return tflite_size_report(path)
    raise ValueError(f"{path} is neither a .keras nor a .tflite file")


def main(argv):
    if len(argv) == 2 and argv[1] in ("--help", "-h"):
        print(__doc__.strip())
        return 0
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    path = argv[1]
    if not os.path.isfile(path):
        print(f"Error: model file {path} does not exist; give the path of a .keras or .tflite file.", file=sys.stderr)
        return 2
    try:
        report = report_for_file(path)
    except ValueError as e:
        print(f"Error: {e}; give the path of a .keras or .tflite file.", file=sys.stderr)
        return 2
    print(f"Model: {path}")
    from esc50_baseline.models.complexity import format_size_report
    print(format_size_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
