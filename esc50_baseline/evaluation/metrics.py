"""Evaluation numbers from per-fold predictions: log loss, class-wise accuracy (sed_eval), P/R/F1, confusion.

`per_fold` maps fold -> (true class indices, probability matrix). Rows of the DCASE table are sets of
classes: one class per row for the class table, the classes of a major category for the category table.
"""
import numpy as np

ESC50_MAJOR_CATEGORIES = {
    "Animals": (0, 9),
    "Natural soundscapes & water": (10, 19),
    "Human, non-speech": (20, 29),
    "Interior/domestic": (30, 39),
    "Exterior/urban": (40, 49),
}


def log_loss(true, probabilities, clip=1e-15):
    """Mean negative log probability of the true class; probabilities clipped and renormalised per row."""
    if len(true) == 0:
        return float("nan")
    p = np.clip(np.asarray(probabilities, dtype=np.float64), clip, 1.0 - clip)
    p /= p.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(len(true)), true])))


def class_accuracies(true, predicted, labels):
    """Class-wise accuracy with sed_eval's SceneClassificationMetrics (nan for a class with no clips)."""
    import sed_eval
    metrics = sed_eval.scene.SceneClassificationMetrics(scene_labels=list(labels))
    reference = [{"filename": str(i), "scene_label": labels[t]} for i, t in enumerate(true)]
    estimated = [{"filename": str(i), "scene_label": labels[p]} for i, p in enumerate(predicted)]
    metrics.evaluate(reference_scene_list=reference, estimated_scene_list=estimated)
    class_wise = metrics.results()["class_wise"]
    present = set(int(t) for t in true)
    return np.array([class_wise[label]["accuracy"]["accuracy"] if i in present else np.nan
                     for i, label in enumerate(labels)], dtype=np.float64)


def confusion_matrix(true, predicted, n_classes):
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (true, predicted), 1)
    return matrix


def precision_recall_f1(matrix):
    tp = np.diag(matrix).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(matrix.sum(axis=0) > 0, tp / matrix.sum(axis=0), 0.0)
        recall = np.where(matrix.sum(axis=1) > 0, tp / matrix.sum(axis=1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return precision, recall, f1


def evaluate(per_fold, labels, clip=1e-15):
    """All numbers of the evaluation stage, as plain Python values (ready for YAML)."""
    folds = sorted(per_fold)
    true = np.concatenate([per_fold[f][0] for f in folds]).astype(np.int64)
    prob = np.concatenate([per_fold[f][1] for f in folds])
    predicted = prob.argmax(axis=1)
    n = len(labels)
    fold_class_acc = {f: class_accuracies(per_fold[f][0], per_fold[f][1].argmax(axis=1), labels) for f in folds}
    matrix = confusion_matrix(true, predicted, n)
    precision, recall, f1 = precision_recall_f1(matrix)
    class_accuracy = class_accuracies(true, predicted, labels)
    return {
        "labels": list(labels), "folds": folds, "clip": clip,
        "true": true, "probabilities": prob, "per_fold": per_fold,
        "class_accuracy": class_accuracy,
        "fold_class_accuracy": fold_class_acc,
        "precision": precision, "recall": recall, "f1": f1, "confusion": matrix,
        "overall_logloss": log_loss(true, prob, clip),
        "overall_accuracy": float(np.nanmean(class_accuracy)),
        "fold_logloss": {f: log_loss(per_fold[f][0], per_fold[f][1], clip) for f in folds},
        "fold_accuracy": {f: float(np.nanmean(fold_class_acc[f])) for f in folds},
    }


def cross_validation(result):
    """The numbers the field reports for k-fold cross-validation: accuracy and log loss per fold, their
    mean and standard deviation over the folds (n - 1 in the denominator; 0 for one fold), and the pooled
    accuracy: the share of all test clips classified correctly."""
    folds = result["folds"]
    accuracy = np.array([result["fold_accuracy"][f] for f in folds])
    logloss = np.array([result["fold_logloss"][f] for f in folds])
    std = lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
    return {"folds": len(folds),
            "clips": {f: int(len(result["per_fold"][f][0])) for f in folds},
            "accuracy": {f: float(a) for f, a in zip(folds, accuracy)},
            "logloss": {f: float(v) for f, v in zip(folds, logloss)},
            "accuracy_mean": float(accuracy.mean()), "accuracy_std": std(accuracy),
            "logloss_mean": float(logloss.mean()), "logloss_std": std(logloss),
            "pooled_accuracy": float(np.mean(result["probabilities"].argmax(axis=1) == result["true"]))}


def row_numbers(result, classes):
    """Numbers of one table row for a set of class indices: log loss over all folds and per fold,
    and accuracy as the mean of its classes' accuracies."""
    clip, folds = result["clip"], result["folds"]
    chosen = np.isin(result["true"], classes)
    per_fold = {}
    for f in folds:
        t, p = result["per_fold"][f]
        mask = np.isin(t, classes)
        per_fold[f] = log_loss(t[mask], p[mask], clip)
    accuracy = result["class_accuracy"][classes]
    return {"logloss": log_loss(result["true"][chosen], result["probabilities"][chosen], clip),
            "fold_logloss": per_fold,
            "accuracy": float(np.nanmean(accuracy)) if np.isfinite(accuracy).any() else float("nan")}


# The per-class metrics, each once: name -> (title, value of class i in an `evaluate` result). Every per-class
# output follows this table: class_metrics.csv's columns, the precision/recall table (every metric but the DCASE
# table's accuracy and log loss) and, for those in SUMMARY_CLASS_METRICS, results.yaml's class_wise entries.
# A new metric is one entry here (and its computation in `evaluate`, if a result does not hold it yet).
CLASS_METRICS = {
    "accuracy": ("Accuracy", lambda result, i: result["class_accuracy"][i]),
    "precision": ("Precision", lambda result, i: result["precision"][i]),
    "recall": ("Recall", lambda result, i: result["recall"][i]),
    "f1": ("F1", lambda result, i: result["f1"][i]),
    "logloss": ("Logloss", lambda result, i: row_numbers(result, [i])["logloss"]),
}
DCASE_CLASS_METRICS = ("accuracy", "logloss")  # the DCASE class table's own columns
SUMMARY_CLASS_METRICS = ("accuracy", "logloss")  # kept per class in results.yaml


def class_metric(result, name, i):
    return float(CLASS_METRICS[name][1](result, i))


def category_rows(targets, groups=ESC50_MAJOR_CATEGORIES):
    """{group name: class indices} for the groups that hold at least one of the dataset's classes."""
    rows = {}
    for name, (first, last) in groups.items():
        members = [i for i, t in enumerate(targets) if first <= t <= last]
        if members:
            rows[name] = members
    return rows
