"""--compare: two trained models on the same test clips, by hand and through the command line."""
import glob
import os
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from esc50_baseline.errors import UserError
from esc50_baseline.evaluation import comparison
from test_cli_robustness import ROOT, dataset, one_error_line, run, trained  # noqa: F401  (fixtures)


def one_hot(classes, n=3):
    return np.eye(n)[classes] * 0.8 + 0.2 / n


@pytest.mark.parametrize("only_a, only_b", [(11, 18), (0, 6), (30, 52), (40, 41)])
def test_the_exact_mcnemar_p_value_is_scipy_s_two_sided_binomial_test(only_a, only_b):
    assert comparison.mcnemar_exact(only_a, only_b) == pytest.approx(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def test_no_discordant_clip_or_an_even_split_is_no_evidence():
    assert comparison.mcnemar_exact(0, 0) == comparison.mcnemar_exact(7, 7) == 1.0
    assert comparison.mcnemar_exact(0, 6) == 2 / 2 ** 6


def test_paired_counts_and_table_by_hand():
    truth = np.array([0, 1, 2, 0])
    a = {1: (truth, one_hot([0, 1, 0, 0])), 2: (truth, one_hot([0, 1, 2, 0]))}  # 3 right, then 4
    b = {1: (truth, one_hot([0, 2, 2, 1])), 2: (truth, one_hot([1, 1, 2, 0]))}  # 2 right, then 3
    rows = comparison.paired_folds(a, b)
    assert rows[1] == {"clips": 4, "right_a": 3, "right_b": 2, "only_a": 2, "only_b": 1, "same_class": 1}
    assert rows[2] == {"clips": 4, "right_a": 4, "right_b": 3, "only_a": 1, "only_b": 0, "same_class": 3}
    s = comparison.summary(rows)
    assert s["differences"] == [-25.0, -25.0] and s["std_difference"] == 0.0
    assert s["p_value"] == pytest.approx(binomtest(1, 4, 0.5).pvalue)  # 3 clips right only with A, 1 only with B
    table = comparison.comparison_table("one", "other", rows)
    all_row = next(line for line in table.splitlines() if line.strip().startswith("all"))
    assert [c.strip() for c in all_row.split("|")] == ["all", "8", "87.5 %", "62.5 %", "-25.00", "3", "1", "50.0 %"]
    assert "B - A over the 2 folds: -25.00 +- 0.00 points" in table and "p = 0.625, within what chance" in table


def test_two_sides_tested_on_other_clips_are_refused():
    a = {1: (np.array([0, 1]), one_hot([0, 1]))}
    with pytest.raises(UserError, match="Fold 1: the two sides were tested on other clips"):
        comparison.paired_folds(a, {1: (np.array([1, 0]), one_hot([0, 1]))})


OTHER_SET = """  - set_id: quick_other
    description: quick with other initial weights and draws
    flow: {sed_evaluation: false}
    general: {active_folds: last, seed: 1}
    learner: {model: cnn3, epochs: 20, batch_size: 2, learning_rate: 0.01, monitor: {initial_delay: 5}}

defaults:
"""


def test_compare_two_trained_sets_through_the_command_line(dataset, trained, tmp_path):  # noqa: F811
    """A second set trained beside the fixture's, compared: every count is the one the two prediction CSVs give."""
    text = open(os.path.join(ROOT, "task_esc50.yaml")).read()
    params = tmp_path / "p.yaml"
    params.write_text(text.replace("\ndefaults:\n", "\n" + OTHER_SET, 1))
    app = str(tmp_path / "system")
    shutil.copytree(trained, app)
    common = ["--dataset_path", dataset, "--params_file", str(params), "--param", "learner.epochs=3",
              "--param", f"path.application={app}"]
    other = run(common + ["--set", "quick_other"], ROOT)
    assert other.returncode == 0, other.stderr
    shown = run(common + ["--set", "quick", "--compare", "quick_other"], ROOT)
    assert shown.returncode == 0, shown.stderr

    right = []
    for set_id in ("quick", "quick_other"):
        (results,) = glob.glob(f"{app}/evaluator/{set_id}_{'[0-9a-f]' * 10}/results.yaml")
        recognizer = os.path.basename(os.path.dirname(results)).rsplit("_", 1)[1]
        csv = pd.read_csv(f"{app}/recognizer/{recognizer}/res_fold_2.csv")
        right.append(csv["predicted_label"] == csv["true_label"])
    a, b = right
    assert (a != b).any()  # the two models disagree on some clips, so the counts below are worth checking
    assert "Comparison on fold(s) 2 of " in shown.stdout
    assert "A = quick\n" in shown.stdout and "B = quick_other\n" in shown.stdout
    all_row = next(line for line in shown.stdout.splitlines() if line.strip().startswith("all"))
    cells = [c.strip() for c in all_row.split("|")]
    assert cells[1] == str(len(a)) and cells[5:7] == [str((a & ~b).sum()), str((b & ~a).sum())]

    missing = run(common + ["--set", "quick", "--compare", "quick:int8"], ROOT)
    assert "quick:int8 has no test predictions for fold 2" in one_error_line(missing)
    assert "task_esc50_tflite.py --set quick" in missing.stderr
    bad_format = run(common + ["--compare", "quick,quick:int9"], ROOT)
    assert "int9 is no TFLite format" in one_error_line(bad_format)


def test_the_classes_the_two_differ_on_most_by_hand():
    truth = np.array([0, 0, 1, 1, 2, 2])
    a = {1: (truth[:3], one_hot([0, 0, 2])), 2: (truth[3:], one_hot([1, 0, 0]))}  # class 0: 2, 1: 1, 2: 0 right
    b = {1: (truth[:3], one_hot([1, 0, 1])), 2: (truth[3:], one_hot([1, 2, 2]))}  # class 0: 1, 1: 2, 2: 2 right
    gains, losses = comparison.class_differences(a, b, ["x", "y", "z"])
    assert gains == [("z", 0, 2, 2), ("y", 1, 2, 2)] and losses == [("x", 2, 1, 2)]
    table = comparison.comparison_table("A", "B", comparison.paired_folds(a, b), (gains, losses))
    assert "Classes B gets right more often than A" in table and table.rstrip().endswith("x                      2 ->   1 of 2")
