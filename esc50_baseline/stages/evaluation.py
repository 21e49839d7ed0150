"""The evaluation stage: the DCASE tables of the test predictions (per class, per category, precision, recall and
F1, the cross-validation summary, the training time), the result record and its figures; and the model-size
stage."""
import os

import numpy as np

from .. import config, results_io
from ..evaluation import metrics, plots, record, tables
from ..run.context import KERAS
from ..data.dataset import fold_title
from .common import load_predictions, need, section
from .learning import training_time


def do_evaluation(ctx, fmt=KERAS, title=None, show=True):
    """Evaluate the float model's test predictions, or those of TFLite format `fmt`; returns metrics.evaluate's
    result. The tables are printed (without `show`, one line) and written to the results folder."""
    if show:
        section(title or "Evaluation")
    per_fold = load_predictions(ctx, fmt)
    result = metrics.evaluate(per_fold, ctx.dataset.labels, clip=ctx.params["evaluation"]["logloss_clip"])
    out_dir = ctx.results_dir(fmt)
    parts = [tables.class_table(result)]
    if ctx.dataset.has_esc10_column:  # the major categories are ESC-50's; other datasets have no such grouping
        parts.append(tables.format_table(result, metrics.category_rows(ctx.dataset.targets), "Category"))
    prf = tables.prf_table(result)  # printed on request (it is always written)
    parts.append(prf)
    cv = metrics.cross_validation(result)
    if cv["folds"] > 1:
        parts.append(f"   Cross-validation summary\n\n{tables.cross_validation_table(cv)}")
    training = {fold: training_time(ctx, fold) for fold in ctx.folds} if fmt == KERAS else {}
    training = {fold: t for fold, t in training.items() if t[1]}  # (none for folds trained before epochs were timed)
    if training:
        parts.append(tables.training_time_table(training))
    text = "\n\n".join(parts)
    if show:
        print("\n\n".join(p for p in parts if p is not prf or ctx.params["evaluation"]["print_class_metrics"]))
    results_io.atomic_write_text(ctx.results_path("tables.txt", fmt), text + "\n")
    _figures(ctx, result, cv, out_dir)
    record.write(out_dir, result, cv, _about(ctx), training)  # results.yaml last: it marks the set evaluated
    summary = (f"{cv['folds']}-fold cross-validation: accuracy {tables.percent(cv['accuracy_mean'])} +- "
               f"{tables.percent(cv['accuracy_std'])} % (mean +- std over folds), log loss {cv['logloss_mean']:.3f}"
               if cv["folds"] > 1 else
               f"One fold ({ctx.folds[0]}), not a cross-validation result: accuracy "
               f"{tables.percent(result['overall_accuracy'])} %, log loss {result['overall_logloss']:.3f}")
    print(f"\n  {summary}; results in {out_dir}" if show else f"  {fmt}: {summary}; tables in {out_dir}")
    return result


def _about(ctx):
    """What a result record says it evaluated."""
    return {"set_id": ctx.params["set_id"], "description": ctx.params["description"],
            "parameter_hash": config.params_hash(ctx.params), "dataset": os.path.abspath(ctx.dataset.root),
            "folds": ctx.folds,
            "parameters": _own_parameters(ctx.params) if not ctx.members else
            {"ensemble": {m.params["set_id"]: _own_parameters(m.params) for m in ctx.members}}}


def _own_parameters(params):
    return {k: v for k, v in params.items() if k not in ("set_id", "description")}


def _figures(ctx, result, cv, out_dir):
    labels, set_id = result["labels"], ctx.params["set_id"]
    plots.confusion_matrix_png(result["confusion"], labels, os.path.join(out_dir, "confusion_matrix.png"),
                               f"{set_id}: confusion matrix, fold(s) {', '.join(map(str, ctx.folds))}")
    for fold, (true, probabilities) in result["per_fold"].items():
        plots.confusion_matrix_png(metrics.confusion_matrix(true, probabilities.argmax(axis=1), len(labels)), labels,
                                   os.path.join(out_dir, f"confusion_matrix_fold_{fold}.png"),
                                   f"{set_id}: confusion matrix, fold {fold}")
    plots.class_accuracy_png(np.nan_to_num(result["class_accuracy"]), labels,
                             os.path.join(out_dir, "class_accuracy.png"), f"{set_id}: class accuracy")
    if cv["folds"] > 1:
        plots.cross_validation_png(cv, os.path.join(out_dir, "cross_validation.png"),
                                   f"{set_id}: {cv['folds']}-fold cross-validation")


def do_model_size_calculation(ctx):
    section("Model size")
    from ..models.complexity import format_size_report, keras_file_report
    for i, fold in enumerate(ctx.folds):
        size = keras_file_report(need(ctx.model_path(fold), "learning"))
        if i == 0:  # every fold has the same architecture: the full table once, then one line per fold
            print(f"  {fold_title(fold)}")
            print(format_size_report(size))
        else:
            t = size["total"]
            print(f"  {fold_title(fold)}: {t['params']:,} parameters, {t['nonzero']:,} non-zero, {t['bytes']:,} bytes")
