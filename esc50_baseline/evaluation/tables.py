"""The DCASE-format tables, as text: a class (or category) column, Logloss, one column per fold, Accuracy."""
import math

import numpy as np

from .metrics import CLASS_METRICS, DCASE_CLASS_METRICS, class_metric, row_numbers


def _cell(value, kind, width):
    if kind == "blank":
        return " " * width
    if kind == "str":
        text = str(value)
        return (text if len(text) <= width else text[:width - 1] + "~").ljust(width)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-".rjust(width)
    return (f"{value:.3f}" if kind == "float3" else f"{percent(value)}%").rjust(width)


def percent(share):
    """A share in per cent to one decimal, ties rounded up: a share computed two ways (the mean of the classes'
    accuracies, the mean of the folds') can differ in its last bit, and 77.75 % must print as 77.8 % from both."""
    return f"{math.floor(1000 * share + 0.5 + 1e-9) / 10:.1f}"


def format_table(result, rows, first_header):
    """rows: {row name: class indices}. Returns the table as text."""
    folds = result["folds"]
    name_width = min(max([len(first_header), len("Accuracy")] + [len(r) for r in rows]) + 1, 28)
    kinds = ["str", "float3"] + ["float3"] * len(folds) + ["percent"]
    widths = [name_width, 9] + [8] * len(folds) + [9]
    headers = [first_header, "Logloss"] + [f"Fold {f}" for f in folds] + ["Accuracy"]

    def line(values, kinds_):
        cells = [(_cell(v, k, w) if k != "str" or i == 0 else str(v).rjust(w))
                 for i, (v, k, w) in enumerate(zip(values, kinds_, widths))]
        return "   " + cells[0] + " | " + cells[1] + " | " + " ".join(cells[2:-1]) + " | " + cells[-1]

    separator = "   " + "-" * (len(line(headers, ["str"] * len(headers))) - 3)
    out = [line(headers, ["str"] * len(headers)), separator]
    for name, classes in rows.items():
        n = row_numbers(result, classes)
        out.append(line([name, n["logloss"]] + [n["fold_logloss"][f] for f in folds] + [n["accuracy"]], kinds))
    out.append(separator)
    out.append(line(["Logloss", result["overall_logloss"]] + [result["fold_logloss"][f] for f in folds] + [None],
                    ["str", "float3"] + ["float3"] * len(folds) + ["blank"]))
    out.append(line(["Accuracy", None] + [result["fold_accuracy"][f] for f in folds] + [result["overall_accuracy"]],
                    ["str", "blank"] + ["percent"] * len(folds) + ["percent"]))
    return "\n".join(out)


def class_table(result):
    return format_table(result, {label: [i] for i, label in enumerate(result["labels"])}, "Class")


def cross_validation_table(cv):
    """Per fold, then mean +- std over the folds and the pooled accuracy, as the field reports k-fold results."""
    lines = [f"   {'Fold':<12} | {'Clips':>6} | {'Accuracy':>9} | {'Logloss':>7}", "   " + "-" * 44]
    for fold in cv["accuracy"]:
        lines.append(f"   {str(fold):<12} | {cv['clips'][fold]:>6} | {percent(cv['accuracy'][fold]):>8}% | "
                     f"{cv['logloss'][fold]:>7.3f}")
    lines.append("   " + "-" * 44)
    lines.append(f"   Mean +- std over {cv['folds']} folds: accuracy {percent(cv['accuracy_mean'])} +- "
                 f"{percent(cv['accuracy_std'])} %, log loss {cv['logloss_mean']:.3f} +- {cv['logloss_std']:.3f}")
    lines.append(f"   Pooled over all {sum(cv['clips'].values())} test clips: accuracy {percent(cv['pooled_accuracy'])} %")
    return "\n".join(lines)


def prf_table(result):
    """Every per-class metric of metrics.CLASS_METRICS but the DCASE table's (accuracy, log loss), and their macro
    average: precision, recall and F1."""
    names = [n for n in CLASS_METRICS if n not in DCASE_CLASS_METRICS]
    widths = [max(8, len(CLASS_METRICS[n][0])) for n in names]
    rule = "   " + "-" * (30 + sum(1 + w for w in widths))
    lines = ["   " + f"{'Class':<28}" + "".join(f" {CLASS_METRICS[n][0]:>{w}}" for n, w in zip(names, widths)), rule]
    for i, label in enumerate(result["labels"]):
        lines.append(f"   {label[:28]:<28}" + "".join(f" {class_metric(result, n, i):>{w}.3f}"
                                                      for n, w in zip(names, widths)))
    lines.append(rule)
    lines.append(f"   {'Macro average':<28}" + "".join(
        f" {np.mean([class_metric(result, n, i) for i in range(len(result['labels']))]):>{w}.3f}"
        for n, w in zip(names, widths)))
    return "\n".join(lines)


def hours_or_minutes(seconds, minute_digits=0):
    """A long duration as people read it: hours from 1.5 h on, else minutes."""
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.{minute_digits}f} min"


def describe_training_time(seconds, timed, epochs):
    untimed = f"; {epochs - timed} of its {epochs} epochs trained before epochs were timed" if timed < epochs else ""
    return f"{seconds:.0f} s in {timed} epochs{untimed}"


def training_time_table(training):
    """Each fold's training time and their sum: what a cross-validation costs on this machine."""
    lines = ["   Training time (wall-clock of the epochs, from the learners' history CSVs; a resumed training "
             "counted over all its runs)", ""]
    lines += [f"   Fold {fold:<4} {describe_training_time(*t)}" for fold, t in training.items()]
    if len(training) > 1:
        total = sum(t[0] for t in training.values())
        longer = f" ({hours_or_minutes(total)})" if total >= 90 else ""
        lines.append(f"   All {len(training)} folds: {total:.0f} s{longer}, their sum: folds trained side by side "
                     "take less wall-clock")
    return "\n".join(lines)
