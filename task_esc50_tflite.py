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
from esc50_baseline.stages import ensemble
from esc50_baseline.stages import tflite as tflite_stages
from esc50_baseline.stages.detection import do_sed_evaluation

FLAGS = task_esc50.FLAGS
flags.adopt_module_key_flags(utils)  # so that --help lists them

# The float model's stages as in task_esc50.py (cached there, so nothing is repeated) but its evaluation,
# which the TFLite evaluation below does for the float model and every format side by side.
STAGES = tuple(stage for stage in task_esc50.STAGES if stage[0] != "evaluation") + (
    ("tflite_conversion", tflite_stages.do_tflite_conversion),
    ("tflite_testing", tflite_stages.do_tflite_testing),
    ("tflite_evaluation", tflite_stages.do_tflite_evaluation),
    ("tflite_micro", tflite_stages.do_tflite_micro),
)

# An ensemble set: each member runs the stages above, then their predictions are averaged per format.
ENSEMBLE_STAGES = (
    ("testing", ensemble.do_ensemble_testing),
    ("tflite_testing", ensemble.do_ensemble_tflite_testing),
    ("tflite_evaluation", ensemble.do_ensemble_tflite_evaluation),
    ("sed_evaluation", do_sed_evaluation),
)


def main(argv):
    ctx = utils.start(FLAGS)
    if ctx is None:
        return
    if FLAGS.final:
        task_esc50.run_final(ctx)
        return
    task_esc50.run_set(ctx, STAGES, ENSEMBLE_STAGES)
    print("\nThe fold models above measure the set; the one to put on a device is its final model, trained on every "
          f"clip: python task_esc50_tflite.py --set {ctx.params['set_id']}{ctx.same_settings} --final")


if __name__ == "__main__":
    utils.run(main)
