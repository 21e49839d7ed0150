"""A set's evaluation as one record: the files the evaluation stage writes (results.yaml, class_metrics.csv,
confusion_matrix.csv) and what the listings read back from results.yaml, its keys spelled here alone. The
per-class columns come from metrics.CLASS_METRICS."""
import os
import statistics
import time

from .. import results_io
from .metrics import CLASS_METRICS, SUMMARY_CLASS_METRICS, class_metric
from .tables import hours_or_minutes, percent

RESULTS_FILE = "results.yaml"


def write(out_dir, result, cv, about, training=None):
    """The record of an evaluation in `out_dir`. `about`: set_id, description, parameter_hash, dataset, folds and
    parameters (what was evaluated); `training`: {fold: (seconds, timed epochs, epochs)}."""
    labels = result["labels"]
    results_io.write_csv(os.path.join(out_dir, "confusion_matrix.csv"), ["true \\ predicted"] + labels,
                         [[label] + list(map(int, row)) for label, row in zip(labels, result["confusion"])])
    results_io.write_csv(os.path.join(out_dir, "class_metrics.csv"), ["class"] + list(CLASS_METRICS),
                         [[label] + [f"{class_metric(result, name, i):.4f}" for name in CLASS_METRICS]
                          for i, label in enumerate(labels)])
    folds = about["folds"]
    results_io.write_yaml(os.path.join(out_dir, RESULTS_FILE), {
        "set_id": about["set_id"],
        "description": about["description"],
        "parameter_hash": about["parameter_hash"],
        "dataset": about["dataset"],
        "folds": list(folds),
        "evaluated_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "overall": {"accuracy": float(result["overall_accuracy"]), "logloss": float(result["overall_logloss"])},
        "folds_results": {f: {"accuracy": float(result["fold_accuracy"][f]),
                              "logloss": float(result["fold_logloss"][f])} for f in folds},
        "cross_validation": {key: cv[key] for key in ("folds", "accuracy_mean", "accuracy_std", "logloss_mean",
                                                      "logloss_std", "pooled_accuracy")},
        "training_seconds": {f: {"seconds": round(t[0], 1), "timed_epochs": t[1], "epochs": t[2]}
                             for f, t in (training or {}).items()},
        "class_wise": {label: {name: class_metric(result, name, i) for name in SUMMARY_CLASS_METRICS}
                       for i, label in enumerate(labels)},
        "parameters": about["parameters"],
    })


def read(path):
    """A results.yaml (a damaged one raises DamagedFile)."""
    return results_io.read_yaml(path)


def overall(record):
    """{accuracy, logloss} over every tested clip."""
    return record["overall"]


def fold_accuracies(record):
    return [v["accuracy"] for v in record["folds_results"].values()]


def accuracy_text(record):
    """A k-fold result as mean +- std over its folds, a one-fold result marked as such."""
    per_fold = fold_accuracies(record)
    if len(per_fold) > 1:
        return f"{percent(statistics.mean(per_fold))} +- {percent(statistics.stdev(per_fold))} %"
    return f"{percent(record['overall']['accuracy'])} % (one fold)"


def training_text(record):
    """The training time of all its folds, '>' before it when some epochs were not timed, '-' when none were."""
    times = record.get("training_seconds") or {}
    if not times:
        return "-"
    total = sum(t["seconds"] for t in times.values())
    partial = len(times) < len(record["folds"]) or any(t["timed_epochs"] < t["epochs"] for t in times.values())
    return (">" if partial else "") + hours_or_minutes(total, minute_digits=1)
