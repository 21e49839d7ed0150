#!/usr/bin/env python
"""ESC-50 baseline system: log-mel features, a configurable network, fold-wise training, testing and evaluation.

    python task_esc50.py --dataset_path DIR            # the active set of task_esc50.yaml, every fold
    python task_esc50.py --set quick --dataset_path DIR # a first try in a few minutes
    python task_esc50.py --show_sets | --show_results
    python task_esc50.py --set quick --dataset_path DIR --predict FILE_OR_DIR
    python task_esc50.py --dataset_path DIR --final     # the set's final model, on every clip, and its TFLite files

Each stage caches its output under path.application in a folder named by the hash of the parameters it
depends on, so a second run recomputes only what a changed parameter affects.
"""
from absl import flags

import utils
from esc50_baseline import interrupts
from esc50_baseline.progress import section
from esc50_baseline.stages import ensemble
from esc50_baseline.stages import tflite as tflite_stages
from esc50_baseline.stages.detection import do_sed_evaluation
from esc50_baseline.stages.evaluation import do_evaluation, do_model_size_calculation
from esc50_baseline.stages.features import do_feature_extraction, do_feature_normalization
from esc50_baseline.stages.learning import do_learning
from esc50_baseline.stages.out_of_domain import do_out_of_domain
from esc50_baseline.stages.testing import do_testing

FLAGS = utils.define_flags()
flags.adopt_module_key_flags(utils)  # so that --help lists them

# The flow, in order: each stage runs when its switch under flow: in the YAML is true.
STAGES = (
    ("feature_extraction", do_feature_extraction),
    ("feature_normalization", do_feature_normalization),
    ("learning", do_learning),
    ("testing", do_testing),
    ("evaluation", do_evaluation),
    ("calculate_model_size", do_model_size_calculation),
    ("sed_evaluation", do_sed_evaluation),
    ("out_of_domain", do_out_of_domain),
)

# An ensemble set's own flow, once each of its member sets has run the flow above.
ENSEMBLE_STAGES = (
    ("testing", ensemble.do_ensemble_testing),
    ("evaluation", do_evaluation),
    ("calculate_model_size", ensemble.do_ensemble_summary),
    ("sed_evaluation", do_sed_evaluation),
    ("out_of_domain", do_out_of_domain),
)


# --final: the set's final model, trained on every clip (no fold tested), then converted like a fold's.
FINAL_STAGES = (
    ("feature_extraction", do_feature_extraction),
    ("feature_normalization", do_feature_normalization),
    ("learning", do_learning),
    ("calculate_model_size", do_model_size_calculation),
    ("tflite_conversion", tflite_stages.do_tflite_conversion),
    ("tflite_micro", tflite_stages.do_tflite_micro),
)
FINAL_TEACHER_STAGES = FINAL_STAGES[:3]  # a student's teacher: its final model, to learn from


def run_flow(ctx, flow=STAGES):
    for switch, stage in flow:
        if ctx.params["flow"][switch]:
            interrupts.check()
            stage(ctx)


def run_set(ctx, flow=STAGES, ensemble_flow=ENSEMBLE_STAGES, teacher_flow=STAGES):
    for member in ctx.members:
        section(f"Member set {title(member)}", "#")
        run_set(member, flow, ensemble_flow, teacher_flow)
    if ctx.teacher:  # trained (or read from the cache) first; a teacher runs the float flow only
        section(f"Teacher set {title(ctx.teacher)}", "#")
        run_set(ctx.teacher, teacher_flow, ensemble_flow, teacher_flow)
        section(f"Student set {title(ctx)}", "#")
    run_flow(ctx, ensemble_flow if ctx.members else flow)


def title(ctx):
    description = ctx.params["description"]
    return ctx.params["set_id"] + (f": {description}" if description else "")


def run_final(ctx):
    run_set(ctx, FINAL_STAGES, ensemble_flow=(), teacher_flow=FINAL_TEACHER_STAGES)
    print(f"\nThe final model of set {ctx.params['set_id']} is ready: --predict and --detect use it from now on.")


def main(argv):
    ctx = utils.start(FLAGS)
    if ctx is not None:
        run_final(ctx) if FLAGS.final else run_set(ctx)


if __name__ == "__main__":
    utils.run(main)
