#!/usr/bin/env python
"""ESC-50 baseline system, TFLite: the float model's stages (cached from task_esc50.py), then conversion to
float32, float16, dynamic-range int8 and full-integer int8 TFLite models, testing each with LiteRT, the
DCASE tables for each, and a comparison of size, accuracy, agreement and latency.

    python task_esc50_tflite.py --dataset_path DIR --set cnn3

Same YAML and flags as task_esc50.py; which formats to build is tflite.formats.
"""
from absl import flags

import task_esc50
import utils

FLAGS = task_esc50.FLAGS
flags.adopt_module_key_flags(utils)  # so that --help lists them


def main(argv):
    ctx = utils.start(FLAGS)
    if ctx is None:
        return
    from esc50_baseline import tflite_stages
    flow = ctx.params["flow"]
    # The float model's stages run as in task_esc50.py; their results are cached, so this repeats nothing
    # already done there, except for evaluation, which the comparison below does for every format.
    task_esc50.run_flow(utils.without_stages(ctx, "evaluation"))
    if flow["tflite_conversion"]:
        tflite_stages.do_tflite_conversion(ctx)
    if flow["tflite_testing"]:
        tflite_stages.do_tflite_testing(ctx)
    if flow["tflite_evaluation"]:
        tflite_stages.do_tflite_evaluation(ctx)


if __name__ == "__main__":
    utils.run(main)
