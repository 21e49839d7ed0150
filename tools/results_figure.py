"""The README's five-fold results table as a figure, so the README's numbers are the figure's only source.

    python tools/results_figure.py          # writes docs/five_fold_results.png

Each row of the table under "The official protocol: five-fold cross-validation" becomes a row of the figure
that `--show_results` draws (its folds as dots, their mean +- std, ESC-50's published results beside them);
a "the same, full-integer TFLite" row takes the name of the row above it, with "int8".
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SECTION = "### The official protocol: five-fold cross-validation"


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


def five_fold_rows(readme):
    """[(label, the five folds' accuracies in %, the mean and std the table states)] of the README's table."""
    table = readme.split(SECTION, 1)[1].split("\n```", 1)[0]
    rows, previous = [], None
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| ") or cells[0] in ("set", "---"):
            continue
        name = label(cells[0], previous)
        folds = [float(v) for v in cells[3].rstrip(" %").split(",")]
        mean, std = (float(v) for v in re.findall(r"[\d.]+", cells[1])[:2])
        rows.append((name, folds, mean, std))
        previous = name if "int8" not in name else previous
    return rows


def main():
    from esc50_baseline.evaluation.plots import results_overview_png
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        rows = five_fold_rows(f.read())
    results = [(name, {"folds_results": {i + 1: {"accuracy": a / 100} for i, a in enumerate(folds)}})
               for name, folds, _mean, _std in rows]
    path = os.path.join(ROOT, "docs", "five_fold_results.png")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    results_overview_png(results, path, esc50=True)
    print(f"{len(rows)} rows of the README's five-fold table -> {path}")


if __name__ == "__main__":
    main()
