"""The results tables as figures, so the tables' numbers are the figures' only source.

    python tools/results_figure.py          # writes docs/five_fold_results.png and docs/levers.png

Each row of the table under "The five-fold table" of docs/five_fold.md becomes a row of the figure
that `--show_results` draws (its folds as dots, their mean +- std, ESC-50's published results beside them);
a "the same, full-integer TFLite" row takes the name of the row above it, with "int8". Each row of the table
of levers tried on the development split (docs/development_split.md) becomes a row of runs, coloured by machine,
beside the bar that a lever had to clear and the range of the set's own runs.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SECTION = "## The five-fold table"
FIVE_FOLD = os.path.join("docs", "five_fold.md")
DEVELOPMENT_SPLIT = os.path.join("docs", "development_split.md")
LEVERS = "**At a glance: the levers tried on `low_complexity`"
BAR = (81.0, 80.0)  # a lever was adopted only with a mean of at least the first and no run under the second
MACHINES = {"A": ("AMD EPYC, AVX-512", "tab:blue"), "B": ("AMD EPYC, AVX2 only", "tab:orange"),
            "X": ("Intel Xeon, AVX-512", "tab:green"), "M": ("Intel Xeon with AMX", "tab:red")}


def without_parentheses(text):
    """Text with every parenthesised part, nested ones included, taken out."""
    out, depth = [], 0
    for char in text:
        depth += char == "("
        if not depth:
            out.append(char)
        depth -= char == ")" and depth > 0
    return "".join(out)


def label(cell, previous):
    """A row's short name: the set and what the cell says outside its parentheses ('low_complexity, AVX2-only
    run'); a 'the same, full-integer TFLite' row is the row above as int8."""
    if cell.startswith("the same, full-integer TFLite"):
        return f"{previous}, int8"
    name = re.sub(r"[*`]", "", without_parentheses(cell))
    return re.sub(r"\s+,", ",", re.sub(r"\s+", " ", name.replace(", the same,", ","))).strip(" ,")


def table_rows(text):
    """The cells of each body row of the first Markdown table in `text` (its header and rule rows left out)."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines[2:]]


def five_fold_rows(text):
    """[(label, the five folds' accuracies in %, the mean and std the table states)] of the five-fold table in `text`
    (docs/five_fold.md)."""
    table = text.split(SECTION, 1)[1].split("\n```", 1)[0]
    rows, previous = [], None
    for cells in table_rows(table):
        name = label(cells[0], previous)
        folds = [float(v) for v in cells[3].rstrip(" %").split(",")]
        mean, std = (float(v) for v in re.findall(r"[\d.]+", cells[1])[:2])
        rows.append((name, folds, mean, std))
        previous = name if "int8" not in name else previous
    return rows


def lever_rows(text):
    """[(lever, [(accuracy in %, machine letter)], the mean the table states, adopted cell)] of the
    table of levers in `text` (docs/development_split.md); a runs cell reads like '79.2 % (A); 80.8, 78.5 % (B)'."""
    table = text.split(LEVERS, 1)[1].split("\n\n", 2)[1]
    rows = []
    for cells in table_rows(table):
        runs = [(float(a), machine) for group, machine in re.findall(r"([\d., ]+) % \(([A-Z])\b", cells[2])
                for a in group.replace(" ", "").split(",") if a]
        rows.append((re.sub(r"[*`]", "", cells[0]), runs, float(cells[3].rstrip(" %")), cells[4]))
    return rows


LOW = 72.0  # a lever run under it (a failed network) is an arrow at the figure's left edge, its accuracy beside it


def lever_x_range(rows):
    """The levers figure's accuracy axis: from just under LOW to past the bar and the best run, so no dot is cut."""
    best = max(a for _lever, runs, _mean, _adopted in rows for a, _m in runs)
    return LOW - 0.3, max(BAR[0], best) + 0.7


def levers_png(rows, path):
    from esc50_baseline.evaluation.plots import _pyplot, _save
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.0, 1.4 + 0.4 * len(rows)))
    own = [a for a, _m in rows[0][1]]  # the first row: the set itself, no lever
    ax.axvspan(min(own), max(own), color="tab:gray", alpha=0.15, label="the set's own runs (no lever)")
    ax.axvline(BAR[0], color="tab:red", linestyle="--", linewidth=1, label=f"bar: a mean of {BAR[0]:g} %")
    for y, (_lever, runs, mean, _adopted) in enumerate(rows):
        for accuracy, machine in runs:
            if accuracy < LOW:
                ax.scatter([LOW], [y], marker="<", s=30, color=MACHINES[machine][1], zorder=3)
                below = accuracy == min(a for a, _m in runs)  # two labels at one arrow: the lower one below it
                ax.annotate(f"{accuracy:g} %", (LOW, y), xytext=(6, -9 if below else 3), textcoords="offset points",
                            fontsize=7)
            else:
                ax.scatter([accuracy], [y], s=22, color=MACHINES[machine][1], zorder=3)
        if mean >= LOW:
            ax.scatter([mean], [y], marker="|", s=160, color="black", zorder=4)
    ax.set_xlim(*lever_x_range(rows))
    for name, color in MACHINES.values():
        ax.scatter([], [], s=22, color=color, label=name)
    ax.set_yticks(range(len(rows)), [lever for lever, *_ in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("accuracy on fold 4 (%), trained on folds 1-3; a dot a run, the bar its lever's mean")
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(1.01, 0))
    ax.grid(axis="x", alpha=0.3)
    _save(fig, path)


def read(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        return f.read()


def main():
    from esc50_baseline.evaluation.plots import results_overview_png
    rows, levers = five_fold_rows(read(FIVE_FOLD)), lever_rows(read(DEVELOPMENT_SPLIT))
    results = [(name, {"folds_results": {i + 1: {"accuracy": a / 100} for i, a in enumerate(folds)}})
               for name, folds, _mean, _std in rows]
    path = os.path.join(ROOT, "docs", "five_fold_results.png")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    results_overview_png(results, path, esc50=True)
    print(f"{len(rows)} rows of the five-fold table ({FIVE_FOLD}) -> {path}")
    path = os.path.join(ROOT, "docs", "levers.png")
    levers_png(levers, path)
    print(f"{len(levers)} rows of {DEVELOPMENT_SPLIT}'s table of levers -> {path}")


if __name__ == "__main__":
    main()
