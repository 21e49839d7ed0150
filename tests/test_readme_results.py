"""The README and docs/ against themselves: the README's contents line links every section, and every relative link
of theirs finds its file and heading; in the five-fold table every row's five fold accuracies give the mean and
standard deviation it states (a typo in either shows here); in the table of levers (docs/development_split.md) every
row's runs give its mean and its "adopted" follows the rule; tools/results_figure.py draws both tables."""
import os
import sys

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
from results_figure import DEVELOPMENT_SPLIT, FIVE_FOLD, five_fold_rows, label, read, without_parentheses  # noqa: E402


def readme(name="README.md"):
    return read(name)


def development_split():
    return read(DEVELOPMENT_SPLIT)


def test_each_five_fold_row_states_the_mean_and_std_of_its_folds():
    rows = five_fold_rows(read(FIVE_FOLD))
    assert len(rows) >= 9 and len({name for name, *_ in rows}) == len(rows)
    for name, folds, mean, std in rows:
        assert len(folds) == 5, name
        # the table rounds each fold to 0.1 (400 clips: steps of 0.25), so the mean of the printed folds is
        # within 0.05 of the true mean, and the stated figures are rounded once more
        assert abs(np.mean(folds) - mean) <= 0.1, name
        assert abs(np.std(folds, ddof=1) - std) <= 0.1, name


def test_row_names_and_the_figure(tmp_path, monkeypatch):
    assert without_parentheses("a (b (c) d) e (f)") == "a  e "
    assert label("**`low_complexity`**, the same, AVX2-only run (a second run (of it))", None) == \
        "low_complexity, AVX2-only run"
    assert label("the same, full-integer TFLite (x)", "cnn3") == "cnn3, int8"
    text, levers = read(FIVE_FOLD), development_split()
    rows = five_fold_rows(text)
    assert [name for name, *_ in rows[:2]] == ["low_complexity_fa, AMD EPYC AVX-512 run",
                                               "low_complexity_fa, AMD EPYC AVX-512 run, int8"]
    assert rows[0][1] == pytest.approx([82.5, 83.0, 81.3, 88.3, 78.8])
    import results_figure
    monkeypatch.setattr(results_figure, "ROOT", str(tmp_path))
    monkeypatch.setattr(results_figure, "five_fold_rows", lambda _text: rows)
    (tmp_path / "docs").mkdir()
    (tmp_path / FIVE_FOLD).write_text(text)
    (tmp_path / DEVELOPMENT_SPLIT).write_text(levers)
    results_figure.main()
    for figure in ("five_fold_results.png", "levers.png"):
        assert (tmp_path / "docs" / figure).read_bytes()[:4] == b"\x89PNG"


def test_the_contents_line_links_every_section_in_order():
    import re
    text = readme()
    heads = re.findall(r"^## (.+)$", text, re.M)
    contents = text.split("Contents: ", 1)[1].split("\n\n", 1)[0]
    links = re.findall(r"\[([^\]]+)\]\(#([^)]+)\)", contents)
    assert [name for name, _ in links] == heads
    assert [target for _, target in links] == [anchor(h) for h in heads]


def test_each_lever_row_states_the_mean_of_its_runs_and_follows_the_adoption_rule():
    import results_figure
    rows = results_figure.lever_rows(development_split())
    assert rows[0][0] == "none: the set itself" and len(rows) >= 12
    for lever, runs, mean, adopted in rows:
        assert runs and all(machine in results_figure.MACHINES for _a, machine in runs), lever
        accuracies = [a for a, _m in runs]
        assert abs(np.mean(accuracies) - mean) <= 0.05 + 1e-9, lever  # the runs as printed, rounded once more
        if lever.startswith("none"):
            continue
        passes = np.mean(accuracies) >= results_figure.BAR[0] and min(accuracies) >= results_figure.BAR[1]
        assert adopted.startswith("yes" if passes else "no"), lever


def test_the_levers_figure_shows_every_run_at_or_above_its_left_edge():
    import results_figure
    rows = results_figure.lever_rows(development_split())
    left, right = results_figure.lever_x_range(rows)
    shown = [a for _lever, runs, _mean, _adopted in rows for a, _m in runs if a >= results_figure.LOW]
    assert shown and all(left < a < right for a in shown)
    assert right > results_figure.BAR[0]
    best = rows + [("a lever far over the bar", [(90.0, "A")], 90.0, "yes")]
    assert results_figure.lever_x_range(best)[1] > 90.0


def anchor(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    import re
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(markdown):
    """The anchors of every heading of a Markdown text."""
    import re
    return {anchor(h) for h in re.findall(r"^#+ (.+)$", markdown, re.M)}


def test_every_relative_link_of_the_readme_and_docs_finds_its_file_and_heading():
    import glob
    import re
    pages = ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
    assert len(pages) >= 5
    checked = 0
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", readme(page)):
            if re.match(r"[a-z]+://", target):
                continue
            path, _, fragment = target.partition("#")
            file = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
            assert os.path.exists(os.path.join(ROOT, file)), f"{page}: {target}"
            if fragment:
                assert fragment in anchors(readme(file)), f"{page}: {target}"
            checked += 1
    assert checked >= 30


def test_anchors_follow_githubs_rule():
    assert anchors("## TFLite: quantized models for small devices\n### Install, run, test\n") == {
        "tflite-quantized-models-for-small-devices", "install-run-test"}


# Words of the project's own working that a reader of the README cannot know; they belong in docs/, defined there.
PROCESS_WORDS = (r"\blevers?\b", r"rule written", r"efficiency issue", r"\bissue \d", r"seed systems", r"these machines",
                 r"\.\./shared", r"rebuild\.py", r"protocol issue", r"the active set before")


def test_the_readme_opens_with_its_commands_and_speaks_to_users():
    import re
    text = readme()
    lines = text.splitlines()
    assert len(lines) < 400
    first_fence = next(i for i, line in enumerate(lines) if line.startswith("```"))
    assert first_fence < 25 and lines[first_fence + 1].startswith("pip install -r requirements.txt")
    found = [(word, line) for line in lines for word in PROCESS_WORDS if re.search(word, line, re.I)]
    assert found == []


def test_the_process_words_check_finds_them():
    import re
    sample = "Lever (27) passed the bar, by a rule written before; see ../shared/esc50 and issue 20."
    assert sum(bool(re.search(word, sample, re.I)) for word in PROCESS_WORDS) == 4
