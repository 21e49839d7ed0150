"""PNG figures of the results: confusion matrix, per-class accuracy, training curves (matplotlib, Agg)."""
import numpy as np

from ..atomic import atomic_path
from .tables import percent


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")  # files only; never needs a screen
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)


def confusion_matrix_png(matrix, labels, path, title):
    plt = _pyplot()
    n = len(labels)
    size = max(5.0, 0.22 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    rows = matrix.sum(axis=1, keepdims=True)
    shown = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=float), where=rows > 0)
    ax.imshow(shown, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels, rotation=90, fontsize=7 if n > 20 else 9)
    ax.set_yticks(range(n), labels, fontsize=7 if n > 20 else 9)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    ax.set_title(title)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if shown[i, j] > 0.5 else "black")
    _save(fig, path)


def class_accuracy_png(accuracies, labels, path, title):
    plt = _pyplot()
    order = np.argsort(accuracies)
    fig, ax = plt.subplots(figsize=(7, max(3.0, 0.2 * len(labels) + 1)))
    ax.barh(range(len(labels)), 100 * np.asarray(accuracies)[order], color="tab:blue")
    ax.set_yticks(range(len(labels)), [labels[i] for i in order], fontsize=7 if len(labels) > 20 else 9)
    ax.set_xlabel("Accuracy (%)")
    ax.set_xlim(0, 100)
    ax.axvline(100 * np.nanmean(accuracies), color="tab:red", linestyle="--", label="mean")
    ax.legend(loc="lower right")
    ax.set_title(title)
    _save(fig, path)


def cross_validation_png(cv, path, title):
    """Accuracy per fold as bars, with the mean and a band of +- one standard deviation."""
    plt = _pyplot()
    folds = list(cv["accuracy"])
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(folds) + 2), 3.5))
    ax.bar(range(len(folds)), [100 * cv["accuracy"][f] for f in folds], color="tab:blue")
    mean, std = 100 * cv["accuracy_mean"], 100 * cv["accuracy_std"]
    ax.axhline(mean, color="tab:red", label=f"mean {percent(cv['accuracy_mean'])} +- {percent(cv['accuracy_std'])} %")
    ax.axhspan(mean - std, mean + std, color="tab:red", alpha=0.15)
    ax.set_xticks(range(len(folds)), [str(f) for f in folds])
    ax.set_xlabel("test fold")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(loc="lower right")
    ax.set_title(title)
    _save(fig, path)


# ESC-50's published five-fold mean accuracies, drawn beside five-fold results on ESC-50 (50 classes)
PUBLISHED_ESC50 = (("Piczak CNN", 64.5), ("human", 81.3), ("compressed ACDNet", 82.9), ("EnvNet-v2 + BC", 84.9),
                   ("ACDNet", 87.1))


def results_overview_rows(results):
    """The evaluated runs as the overview draws them, best mean first: (label, per-fold accuracies in %, mean, std,
    one fold or not). `results`: [(row label, results.yaml contents)]."""
    rows = []
    for label, r in results:
        from .record import fold_accuracies
        per_fold = [100 * a for a in fold_accuracies(r)]
        std = float(np.std(per_fold, ddof=1)) if len(per_fold) > 1 else 0.0
        rows.append((label, per_fold, float(np.mean(per_fold)), std, len(per_fold) == 1))
    return sorted(rows, key=lambda row: row[2], reverse=True)


def results_overview_png(results, path, esc50=False):
    """Every evaluated run on one axis: its folds' accuracies as dots, their mean +- std; a one-fold result
    hollow and labelled so; with `esc50`, the published five-fold results as dashed lines. Returns the rows."""
    rows = results_overview_rows(results)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.0, 1.2 + 0.45 * len(rows)))
    for y, (label, per_fold, mean, std, one_fold) in enumerate(rows):
        ax.scatter(per_fold, [y] * len(per_fold), s=14, color="tab:gray", alpha=0.7, zorder=2)
        ax.errorbar([mean], [y], xerr=[std], fmt="o", mfc="white" if one_fold else "tab:blue", color="tab:blue",
                    capsize=3, zorder=3)
    ax.set_yticks(range(len(rows)), [f"{label} (one fold)" if one_fold else f"{label} ({len(per_fold)} folds)"
                                     for label, per_fold, _m, _s, one_fold in rows], fontsize=8)
    ax.invert_yaxis()
    if esc50:
        for _name, accuracy in PUBLISHED_ESC50:
            ax.axvline(accuracy, color="tab:red", linestyle="--", linewidth=0.8, alpha=0.6)
        top = ax.secondary_xaxis("top")
        top.set_xticks([a for _n, a in PUBLISHED_ESC50], [f"{n} {a}" for n, a in PUBLISHED_ESC50], rotation=45,
                       ha="left", fontsize=7, color="tab:red")
    ax.set_xlabel("accuracy (%): folds as grey dots, mean +- std in blue" + ("; red: published, five folds"
                                                                           if esc50 else ""))
    ax.grid(axis="x", alpha=0.3)
    _save(fig, path)
    return rows


def training_curves_png(history, path, title):
    """history: {'loss': [...], 'val_loss': [...], 'accuracy': [...], 'val_accuracy': [...]}."""
    plt = _pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, key in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = history.get(prefix + key)
            if values:
                ax.plot(range(1, len(values) + 1), values, style, label=("validation " if prefix else "train ") + key)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    _save(fig, path)


def score_curves_png(curve, hop, labels, detected, path, title, references=(), most=8):
    """A recording's class score curves (the classes detected or annotated, else the highest), with the detected
    events as bars above and the reference events, when known, as bars below."""
    plt = _pyplot()
    named = {label for _on, _off, label in list(detected) + list(references)}
    ranked = [labels[i] for i in np.argsort(-curve.max(axis=0)) if labels[i] not in named]
    shown = ([label for label in labels if label in named] + ranked)[:most]
    fig, ax = plt.subplots(figsize=(max(8.0, min(20.0, len(curve) * hop / 4)), 4.5))
    times = np.arange(len(curve)) * hop
    colors = {label: plt.get_cmap("tab10")(i % 10) for i, label in enumerate(shown)}
    for label in shown:
        ax.step(times, curve[:, labels.index(label)], where="post", color=colors[label], label=label)
    for row, events in ((1.04, detected), (-0.08, references)):
        for on, off, label in events:
            ax.plot([on, off], [row, row], color=colors.get(label, "grey"), linewidth=5, solid_capstyle="butt")
    ax.set_ylim(-0.14, 1.1)
    ax.set_xlim(0, len(curve) * hop)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("score")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.set_title(title + ("  (bars: detected above, reference below)" if references else "  (bars: detected)"))
    _save(fig, path)
