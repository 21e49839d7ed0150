"""Two classifiers on the same test clips: per fold, who is right where the other is wrong, and whether the
pooled difference is more than the test clips' chance (McNemar's exact test, as Dietterich (1998) recommends for
two models tested on one test set).

It judges two trained models, not two recipes: a rerun with other seeds moves a set by about a point on ESC-50's
five folds, which no test on one run's clips can see.
"""
import math

import numpy as np

from ..errors import UserError
from .tables import percent


def _predicted(a, b):
    """{fold: (true classes, A's predicted classes, B's)} for the folds of `a`, both {fold: (truth, probabilities)};
    refuses two sides tested on other clips."""
    out = {}
    for fold in a:
        truth, pa = a[fold]
        truth_b, pb = b[fold]
        if not np.array_equal(truth, truth_b):
            raise UserError(f"Fold {fold}: the two sides were tested on other clips (their dataset settings differ); "
                            "compare two sets tested on the same clips.")
        out[fold] = truth, pa.argmax(axis=1), pb.argmax(axis=1)
    return out


def paired_folds(a, b):
    """{fold: counts} for the folds both {fold: (truth, probabilities)} hold, the clips in the same order."""
    rows = {}
    for fold, (truth, pred_a, pred_b) in _predicted(a, b).items():
        right_a, right_b = pred_a == truth, pred_b == truth
        rows[fold] = {"clips": len(truth), "right_a": int(right_a.sum()), "right_b": int(right_b.sum()),
                      "only_a": int((right_a & ~right_b).sum()), "only_b": int((right_b & ~right_a).sum()),
                      "same_class": int((pred_a == pred_b).sum())}
    return rows


def class_differences(a, b, labels, top=5):
    """The classes whose pooled clips the two get right most unequally, `top` each way: [(label, right with A,
    right with B, clips)], B's largest gains first, then A's."""
    truth, pred_a, pred_b = (np.concatenate(column) for column in zip(*_predicted(a, b).values()))
    right_a, right_b = pred_a == truth, pred_b == truth
    rows = [(label, int(right_a[truth == k].sum()), int(right_b[truth == k].sum()), int((truth == k).sum()))
            for k, label in enumerate(labels)]
    gains = sorted((r for r in rows if r[2] > r[1]), key=lambda r: r[1] - r[2])[:top]
    losses = sorted((r for r in rows if r[1] > r[2]), key=lambda r: r[2] - r[1])[:top]
    return gains, losses


def mcnemar_exact(only_a, only_b):
    """Two-sided exact McNemar p-value: how likely a split of the discordant clips at least this uneven is when
    either model is as likely to be the one that is right (a binomial test with p = 1/2)."""
    n, k = only_a + only_b, min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2 * tail / 2 ** n) if n else 1.0


def summary(rows):
    """Pooled counts, the folds' accuracy differences (points, b - a) and their mean and std, and the p-value."""
    total = {key: sum(r[key] for r in rows.values()) for key in next(iter(rows.values()))}
    differences = [100 * (r["right_b"] - r["right_a"]) / r["clips"] for r in rows.values()]
    return dict(total, differences=differences, mean_difference=float(np.mean(differences)),
                std_difference=float(np.std(differences, ddof=1)) if len(differences) > 1 else float("nan"),
                p_value=mcnemar_exact(total["only_a"], total["only_b"]))


def comparison_table(name_a, name_b, rows, classes=None):
    """The comparison as text: a line per fold, then the pooled counts, the test and what it means; with
    `classes` (class_differences), the classes the two differ on most."""
    s = summary(rows)
    width = 8
    lines = [f"   A = {name_a}", f"   B = {name_b}", "",
             f"   {'Fold':<6} | {'Clips':>5} | {'A':>{width}} | {'B':>{width}} | {'B - A':>7} | "
             f"{'only A right':>12} | {'only B right':>12} | {'same class':>10}"]
    lines.append("   " + "-" * (len(lines[-1]) - 3))

    def line(fold, r, difference):
        return (f"   {str(fold):<6} | {r['clips']:>5} | {percent(r['right_a'] / r['clips']) + ' %':>{width}} | "
                f"{percent(r['right_b'] / r['clips']) + ' %':>{width}} | {difference:>+7.2f} | {r['only_a']:>12} | "
                f"{r['only_b']:>12} | {percent(r['same_class'] / r['clips']) + ' %':>10}")
    for (fold, r), difference in zip(rows.items(), s["differences"]):
        lines.append(line(fold, r, difference))
    lines.append("   " + "-" * (len(lines[3]) - 3))
    lines.append(line("all", s, 100 * (s["right_b"] - s["right_a"]) / s["clips"]))
    lines.append("")
    if len(rows) > 1:
        lines.append(f"   B - A over the {len(rows)} folds: {s['mean_difference']:+.2f} +- {s['std_difference']:.2f} "
                     "points (mean +- std)")
    verdict = ("more than chance on these clips gives" if s["p_value"] < 0.05
               else "within what chance on these clips gives")
    lines.append(f"   Right only with A: {s['only_a']} clips, only with B: {s['only_b']}.")
    lines.append(f"   Exact McNemar test (two-sided): p = {s['p_value']:.3g}, {verdict}.")
    lines.append("   (Two trained models, not two recipes: a rerun with other seeds can move a set by about a point.)")
    for title, picked in zip(("B gets right more often than A", "A gets right more often than B"), classes or ()):
        if picked:
            lines.append(f"\n   Classes {title} (clips right with A -> with B, of the class's clips):")
            lines += [f"   {label:<20} {ra:>3} -> {rb:>3} of {n}" for label, ra, rb, n in picked]
    return "\n".join(lines)
