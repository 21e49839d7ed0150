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
    """The size report of a .keras or .tflite file; ValueError (one sentence) when it is not a whole model of that
    kind."""
    if path.endswith(".keras"):
        from esc50_baseline.models.complexity import keras_size_report
        from esc50_baseline.models.model_files import model_file_problem
        problem = model_file_problem(path)
        if problem:
            raise ValueError(f"{path} is not a whole .keras file ({problem})")
        from esc50_baseline import runtime  # noqa: F401  (quiet TensorFlow start-up)
        import keras
        try:
            model = keras.models.load_model(path, compile=False)
        except Exception as e:  # noqa: BLE001  (Keras meets a wrong archive with many exception types)
            raise ValueError(f"{path} is a zip archive but not a Keras model Keras can load "
                             f"({str(e).splitlines()[0][:120] or type(e).__name__})") from None
        return keras_size_report(model)
    if path.endswith(".tflite"):
        from esc50_baseline.tflite.run import model_problem
        problem = model_problem(path)
        if problem:
            raise ValueError(f"{path} is not a TFLite model LiteRT can load ({problem})")
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
    if os.path.isdir(path):
        print(f"Error: {path} is a folder; give the path of a .keras or .tflite file.", file=sys.stderr)
        return 2
    if not os.path.isfile(path):
        print(f"Error: model file {path} does not exist; give the path of a .keras or .tflite file.", file=sys.stderr)
        return 2
    try:
        report = report_for_file(path)
    except ValueError as e:
        print(f"Error: {e}; give the path of a .keras or .tflite file.", file=sys.stderr)
        return 2
    from esc50_baseline.models.complexity import format_size_report
    try:
        print(f"Model: {path}")
        print(format_size_report(report))
    except BrokenPipeError:  # | head: the rest is not wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
