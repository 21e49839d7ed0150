"""Ensemble sets: several trained sets classify the same clips and their probabilities are averaged.

Each member runs its own flow (cached as usual); the ensemble's stages only average the members' prediction
files fold by fold, then evaluate them like any set's.
"""
import os

import numpy as np

from .. import results_io
from ..errors import DamagedFile, UserError
from ..evaluation import record, tables
from ..run.context import KERAS
from .common import need, predictions_cached, section


def average_member_predictions(ctx, fold, fmt=KERAS):
    """Average the members' test predictions of one fold (of the float models, or of one TFLite format) into the
    ensemble's; cached while no member's file is newer."""
    stage = "testing" if fmt == KERAS else "tflite_testing"
    inputs = [need(member.predictions_path(fold, fmt), stage) for member in ctx.members]
    out = ctx.predictions_path(fold, fmt)
    if predictions_cached(ctx, out, fold, *inputs):
        return out, False
    labels = ctx.dataset.labels
    first_names, truth, total = results_io.read_probabilities(inputs[0], labels)
    for member, path in zip(ctx.members[1:], inputs[1:]):
        names, _truth, probabilities = results_io.read_probabilities(path, labels)
        if names != first_names:
            raise UserError(f"Fold {fold}: member sets {ctx.members[0].params['set_id']} and "
                            f"{member.params['set_id']} predicted different clips ({inputs[0]} vs {path}); "
                            "run both on the same dataset with --overwrite.")
        total = total + probabilities
    results_io.write_probabilities(out, first_names, truth, total / len(inputs), labels)
    return out, True


def do_ensemble_testing(ctx):
    section("Testing: ensemble")
    for fold in ctx.folds:
        out, computed = average_member_predictions(ctx, fold)
        print(f"  Fold {fold}: " + (f"{len(ctx.members)} members' predictions averaged -> {out}" if computed
                                    else "predictions cached"))


def do_ensemble_tflite_testing(ctx):
    section("TFLite testing: ensemble")
    from .tflite import formats
    for fold in ctx.folds:
        for fmt in formats(ctx):
            out, computed = average_member_predictions(ctx, fold, fmt)
            print(f"  Fold {fold}: {fmt:<13} " + (f"averaged -> {out}" if computed else "predictions cached"))


def do_ensemble_summary(ctx):
    """Each member's accuracy and complexity beside the ensemble's (complexity: the members' sum, for DCASE's
    limits are a whole system's)."""
    section("Ensemble summary")
    from ..models.complexity import DCASE_MACS_LIMIT, DCASE_SIZE_LIMIT_BYTES, byte_string, keras_file_report
    fold = ctx.folds[0]
    width = max(16, *(len(run.params["set_id"]) for run in ctx.members + [ctx]))
    print(f"   {'Set':<{width}} | {'Accuracy':>8} | {'Logloss':>7} | {'Parameters':>12} | {'DCASE size':>10} | "
          f"{'M MACs/clip':>11}")
    print("   " + "-" * (width + 64))
    rows = []
    for member in ctx.members:
        total = keras_file_report(need(member.model_path(fold), "learning"))["total"]
        rows.append((member, total["params"], total["bytes"], total["macs"]))
    rows.append((ctx,) + tuple(sum(r[i] for r in rows) for i in (1, 2, 3)))
    for run, params, size, macs in rows:
        result = _evaluated(run)
        accuracy = f"{tables.percent(result['accuracy'])}%" if result else "-"
        logloss = f"{result['logloss']:.3f}" if result else "-"
        print(f"   {run.params['set_id']:<{width}} | {accuracy:>8} | {logloss:>7} | {params:>12,} | "
              f"{byte_string(size):>10} | {macs / 1e6:>11.2f}")
    print("   (accuracy and log loss over fold(s) " + ", ".join(map(str, ctx.folds)) + "; - = not evaluated; DCASE "
          f"size: the non-zero parameters as stored, float32; DCASE's limits, for the whole system: "
          f"{DCASE_SIZE_LIMIT_BYTES / 1024:.1f} KB and {DCASE_MACS_LIMIT / 1e6:.0f} M MACs; int8 sizes: "
          "task_esc50_tflite.py)")


def _evaluated(ctx):
    path = ctx.results_path(record.RESULTS_FILE)
    if not os.path.exists(path):
        return None
    try:
        data = record.read(path)
    except DamagedFile:
        return None
    return record.overall(data) if data.get("folds") == list(ctx.folds) else None


def do_ensemble_tflite_evaluation(ctx):
    """The DCASE tables of the averaged float and TFLite predictions, then accuracy and the members' summed size
    per format: DCASE's limits are a system's, so an ensemble meets them only with all its members together."""
    from ..models.complexity import DCASE_MACS_LIMIT, DCASE_SIZE_LIMIT_BYTES, keras_file_report
    from ..tflite.size import tflite_size_report
    from .tflite import evaluate_formats
    results = evaluate_formats(ctx, ", ensemble")
    section(f"TFLite comparison: ensemble {ctx.params['set_id']}, fold(s) {', '.join(map(str, ctx.folds))}")
    print(f"   {'Format':<13} | {'File bytes':>10} | {'DCASE size':>10} | {'Accuracy':>8} | {'Logloss':>7}")
    print("   " + "-" * 61)
    for fmt, result in results.items():
        if fmt == "keras":
            paths, report = [m.model_path(f) for m in ctx.members for f in ctx.folds], keras_file_report
        else:
            paths, report = [m.tflite_path(f, fmt) for m in ctx.members for f in ctx.folds], tflite_size_report
        totals = [report(p)["total"] for p in paths]
        if fmt == "keras":  # the float models' count, as the model-size stage's (the same for every fold)
            macs = np.sum([t["macs"] for t in totals]) / len(ctx.folds)
        file_bytes = np.sum([os.path.getsize(p) for p in paths]) / len(ctx.folds)
        size_bytes = np.sum([t["bytes"] for t in totals]) / len(ctx.folds)
        print(f"   {fmt:<13} | {file_bytes:>10,.0f} | {size_bytes / 1024:>7.1f} KB | "
              f"{tables.percent(result['overall_accuracy']):>7}% | {result['overall_logloss']:>7.3f}")
    print(f"   (file bytes and DCASE size: all members' of one fold summed, mean over folds; DCASE's limits, for the "
          f"whole system: {DCASE_SIZE_LIMIT_BYTES / 1024:.1f} KB and {DCASE_MACS_LIMIT / 1e6:.0f} M MACs, the "
          f"members' together {macs / 1e6:.2f} M)")
