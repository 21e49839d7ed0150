import pytest
import math
import os
import time

import numpy as np

from esc50_baseline.evaluation import metrics, tables
from esc50_baseline import results_io

LABELS = ["a", "b", "c"]
# fold -> rows of (filename, true label, probabilities)
KNOWN = {
    1: [("x1", "a", [0.7, 0.2, 0.1]), ("x2", "b", [0.1, 0.8, 0.1]), ("x3", "c", [0.5, 0.25, 0.25])],
    2: [("y1", "a", [0.4, 0.5, 0.1]), ("y2", "b", [0.2, 0.6, 0.2]), ("y3", "c", [0.1, 0.1, 0.8])],
}


def load_known(tmp_path):
    per_fold = {}
    for fold, rows in KNOWN.items():
        path = str(tmp_path / f"res_fold_{fold}.csv")
        results_io.write_probabilities(path, [r[0] for r in rows], [r[1] for r in rows],
                                       np.array([r[2] for r in rows]), LABELS)
        _names, truth, prob = results_io.read_probabilities(path, LABELS)
        per_fold[fold] = (np.array([LABELS.index(t) for t in truth]), prob)
    return per_fold


def test_numbers_of_a_known_probability_csv(tmp_path):
    result = metrics.evaluate(load_known(tmp_path), LABELS)
    nll = {"x1": -math.log(0.7), "x2": -math.log(0.8), "x3": -math.log(0.25),
           "y1": -math.log(0.4), "y2": -math.log(0.6), "y3": -math.log(0.8)}
    assert math.isclose(result["overall_logloss"], sum(nll.values()) / 6, rel_tol=1e-9)
    assert math.isclose(result["fold_logloss"][1], (nll["x1"] + nll["x2"] + nll["x3"]) / 3, rel_tol=1e-9)
    # class a: x1 right, y1 wrong; b: both right; c: x3 wrong, y3 right
    np.testing.assert_allclose(result["class_accuracy"], [0.5, 1.0, 0.5])
    assert math.isclose(result["overall_accuracy"], 2 / 3)
    assert math.isclose(result["fold_accuracy"][1], 2 / 3) and math.isclose(result["fold_accuracy"][2], 2 / 3)
    np.testing.assert_array_equal(result["confusion"], [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    np.testing.assert_allclose(result["precision"], [1 / 2, 2 / 3, 1.0])
    np.testing.assert_allclose(result["recall"], [0.5, 1.0, 0.5])
    np.testing.assert_allclose(result["f1"], [0.5, 0.8, 2 / 3])
    row_a = metrics.row_numbers(result, [0])
    assert math.isclose(row_a["logloss"], (nll["x1"] + nll["y1"]) / 2, rel_tol=1e-9)
    assert math.isclose(row_a["fold_logloss"][2], nll["y1"], rel_tol=1e-9)


def test_log_loss_clips_zero_probabilities():
    assert math.isclose(metrics.log_loss(np.array([0]), np.array([[0.0, 1.0]]), clip=1e-15),
                        -math.log(1e-15 / (1 + 1e-15 - 1e-15)), rel_tol=1e-6)


def test_table_has_dcase_layout(tmp_path):
    result = metrics.evaluate(load_known(tmp_path), LABELS)
    lines = tables.class_table(result).splitlines()
    header = lines[0].split()
    assert header == ["Class", "|", "Logloss", "|", "Fold", "1", "Fold", "2", "|", "Accuracy"]
    row_b = lines[3].split()
    assert row_b[0] == "b" and row_b[-1] == "100.0%"
    assert lines[-2].split()[0] == "Logloss" and float(lines[-2].split()[2]) == round(result["overall_logloss"], 3)
    assert lines[-1].split() == ["Accuracy", "|", "|", "66.7%", "66.7%", "|", "66.7%"]


def test_category_rows_follow_esc50_targets():
    rows = metrics.category_rows([0, 5, 12, 41])
    assert rows == {"Animals": [0, 1], "Natural soundscapes & water": [2], "Exterior/urban": [3]}


def test_test_time_shifts_average_the_rolled_predictions():
    from esc50_baseline.evaluation.test_time import averaged
    x = np.arange(2 * 3 * 5, dtype=np.float32).reshape(2, 3, 5)
    first_frame = lambda v: v[:, :, 0].copy()  # a "model" that reads frame 0 only
    np.testing.assert_array_equal(averaged(first_frame, x, [0]), x[:, :, 0])
    # rolled by +1 frame 0 holds the last frame; by -1 it holds frame 1
    np.testing.assert_allclose(averaged(first_frame, x, [0, 1, -1]), (x[:, :, 0] + x[:, :, 4] + x[:, :, 1]) / 3)
    np.testing.assert_array_equal(averaged(first_frame, x, []), x[:, :, 0])
    # a model that rolls its own input is given it unrolled, with each shift
    calls = []
    inside = lambda v, shift: calls.append((v is x, shift)) or np.full((2, 1), shift, np.float64)
    np.testing.assert_allclose(averaged(inside, x, [0, 3, -2], shift_inside=True), np.full((2, 1), 1 / 3))
    assert calls == [(True, 0), (True, 3), (True, -2)]


def test_cross_validation_summary_by_hand():
    def probs(predicted, n=2):
        return np.eye(n)[predicted] * 0.8 + 0.1
    per_fold = {1: (np.array([0, 1, 0, 1]), probs([0, 1, 1, 1])),   # 3 of 4; class accuracies 1/2 and 2/2
                2: (np.array([0, 1]), probs([0, 0]))}               # 1 of 2; class accuracies 1/1 and 0/1
    cv = metrics.cross_validation(metrics.evaluate(per_fold, ["a", "b"]))
    assert cv["folds"] == 2 and cv["clips"] == {1: 4, 2: 2}
    assert cv["accuracy"] == pytest.approx({1: 0.75, 2: 0.5})
    assert abs(cv["accuracy_mean"] - 0.625) < 1e-12
    assert abs(cv["accuracy_std"] - np.sqrt(((0.75 - 0.625) ** 2 + (0.5 - 0.625) ** 2) / 1)) < 1e-12  # n - 1
    assert abs(cv["pooled_accuracy"] - 4 / 6) < 1e-12
    table = tables.cross_validation_table(cv)
    assert "Mean +- std over 2 folds: accuracy 62.5 +- 17.7 %" in table and "Pooled over all 6 test clips: accuracy 66.7 %" in table
    single = metrics.cross_validation(metrics.evaluate({3: per_fold[1]}, ["a", "b"]))
    assert single["folds"] == 1 and single["accuracy_std"] == 0.0


def test_a_share_prints_the_same_however_its_float_was_summed():
    # 1555 of 2000 clips right, as a mean of 50 classes' accuracies (k of 40 each): that float is 0.77749999...,
    # which plain formatting prints as 77.7 while the pooled 1555 / 2000 prints as 77.8
    right = np.array([1, 37, 25, 34, 31, 40, 31, 39, 40, 35, 33, 38, 40, 25, 31, 22, 22, 34, 20, 35, 37, 23, 34, 28, 38,
                      39, 32, 31, 34, 32, 35, 24, 36, 31, 35, 30, 26, 21, 31, 40, 20, 31, 29, 20, 31, 36, 35, 40, 31, 32])
    class_mean = float(np.mean(right / 40))
    assert right.sum() == 1555 and f"{100 * class_mean:.1f}" == "77.7"
    assert tables.percent(class_mean) == tables.percent(1555 / 2000) == "77.8"
    assert [tables.percent(s) for s in (0, 0.7774, 0.77751, 0.625, 1)] == ["0.0", "77.7", "77.8", "62.5", "100.0"]


def test_training_time_table_sums_the_folds_and_names_untimed_epochs():
    table = tables.training_time_table({1: (4000.0, 200, 200), 2: (2000.0, 90, 200)})
    lines = [line.strip() for line in table.splitlines()]
    assert "Fold 1    4000 s in 200 epochs" in lines
    assert "Fold 2    2000 s in 90 epochs; 110 of its 200 epochs trained before epochs were timed" in lines
    assert lines[-1].startswith("All 2 folds: 6000 s (1.7 h), their sum")
    assert "All 2 folds: 600 s (10 min)" in tables.training_time_table({1: (400.0, 4, 4), 2: (200.0, 4, 4)})
    assert "All" not in tables.training_time_table({3: (20.0, 3, 3)})  # one fold: no sum


def test_confusion_precision_recall_f1_by_hand_with_an_unpredicted_and_an_absent_class():
    """Classes 0..3: class 2 is never predicted, class 3 has no clips but is predicted once; class 1 has
    exactly one clip. Counted by hand: precision = tp / predicted, recall = tp / true, 0 where undefined."""
    true = np.array([0, 0, 0, 1, 2, 2])
    predicted = np.array([0, 0, 1, 1, 0, 3])
    matrix = metrics.confusion_matrix(true, predicted, 4)
    assert matrix.dtype.kind == "i"  # counts, written to confusion_matrix.csv as whole numbers
    np.testing.assert_array_equal(matrix, [[2, 1, 0, 0], [0, 1, 0, 0], [1, 0, 0, 1], [0, 0, 0, 0]])
    precision, recall, f1 = metrics.precision_recall_f1(matrix)
    np.testing.assert_allclose(precision, [2 / 3, 1 / 2, 0.0, 0.0])
    np.testing.assert_allclose(recall, [2 / 3, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(f1, [2 / 3, 2 * 0.5 / 1.5, 0.0, 0.0])
    labels = ["a", "b", "c", "d"]
    accuracy = metrics.class_accuracies(true, predicted, labels)
    np.testing.assert_allclose(accuracy[:3], [2 / 3, 1.0, 0.0])
    assert np.isnan(accuracy[3])  # no clips of class 3: no accuracy, not 0


def test_category_rows_include_both_ends_of_each_category():
    rows = metrics.category_rows([0, 9, 10, 19, 49])
    assert rows == {"Animals": [0, 1], "Natural soundscapes & water": [2, 3], "Exterior/urban": [4]}


def test_log_loss_renormalises_rows_and_is_nan_without_clips():
    assert metrics.log_loss([0], [[2.0, 2.0]]) == pytest.approx(math.log(2))  # row sums to 4: read as 1/2 each
    assert math.isnan(metrics.log_loss(np.zeros(0, int), np.zeros((0, 2))))


def test_the_clip_setting_reaches_every_log_loss_and_per_fold_class_accuracies_are_the_fold_s():
    """With clip 0.1 a zero probability of the true class counts as 0.1 / (1 + 0.1), everywhere."""
    per_fold = {1: (np.array([0, 1]), np.array([[1.0, 0.0], [0.0, 1.0]])),   # right, certain
                2: (np.array([0, 1]), np.array([[0.0, 1.0], [0.0, 1.0]]))}   # clip 0 wrong: its class gets 0
    result = metrics.evaluate(per_fold, ["a", "b"], clip=0.1)
    right, wrong = -math.log(0.9 / 1.0), -math.log(0.1 / 1.0)  # clipped to [0.1, 0.9], rows still sum to 1
    assert result["fold_logloss"][1] == pytest.approx(right)
    assert result["fold_logloss"][2] == pytest.approx((wrong + right) / 2)
    assert result["overall_logloss"] == pytest.approx((3 * right + wrong) / 4)
    assert metrics.row_numbers(result, [0])["logloss"] == pytest.approx((right + wrong) / 2)
    assert metrics.row_numbers(result, [0])["fold_logloss"][2] == pytest.approx(wrong)
    np.testing.assert_allclose(result["fold_class_accuracy"][1], [1.0, 1.0])
    np.testing.assert_allclose(result["fold_class_accuracy"][2], [0.0, 1.0])


def test_a_row_of_classes_without_clips_has_no_accuracy():
    per_fold = {1: (np.array([0, 0]), np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0]]))}
    result = metrics.evaluate(per_fold, ["a", "b", "c"])
    assert math.isnan(metrics.row_numbers(result, [1, 2])["accuracy"])
    assert metrics.row_numbers(result, [0, 2])["accuracy"] == 0.5


def test_results_overview_draws_every_run_best_first_and_marks_one_fold(tmp_path):
    """--show_results's figure: runs sorted by mean accuracy, their folds' values, mean and std by hand; a run of one
    fold flagged; two runs of one set told apart by their hashes; the file a PNG; references only on ESC-50."""
    from esc50_baseline.reports import results as results_report

    def result(set_id, digest, accuracies, classes=50):
        return {"set_id": set_id, "parameter_hash": digest, "class_wise": {f"c{i}": {} for i in range(classes)},
                "folds_results": {fold + 1: {"accuracy": a} for fold, a in enumerate(accuracies)}}
    results = [result("small", "aaa", [0.70, 0.74, 0.72, 0.80, 0.64]), result("big", "bbb", [0.81]),
               result("small", "ccc", [0.75, 0.77, 0.79, 0.85, 0.69])]
    path = results_report.overview_figure(results, str(tmp_path))
    assert path == str(tmp_path / "results_overview.png")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    from esc50_baseline.evaluation.plots import results_overview_rows
    rows = results_overview_rows([("x", results[0]), ("y", results[1]), ("z", results[2])])
    assert [row[0] for row in rows] == ["y", "z", "x"]  # 81.0, 77.0, 72.0
    label, per_fold, mean, std, one_fold = rows[1]
    assert per_fold == pytest.approx([75, 77, 79, 85, 69]) and mean == pytest.approx(77.0)
    assert std == pytest.approx(np.sqrt((4 + 0 + 4 + 64 + 64) / 4)) and not one_fold  # n - 1, as the CV summary
    assert rows[0][3] == 0.0 and rows[0][4]
    # the labels the figure gets: the set's name, with its hash where the set was evaluated with two settings
    from unittest import mock
    with mock.patch("esc50_baseline.evaluation.plots.results_overview_png") as draw:
        results_report.overview_figure(results, str(tmp_path))
        results_report.overview_figure([results[1], result("other", "ddd", [0.5], classes=10)], str(tmp_path))
    (first, _path), first_kwargs = draw.call_args_list[0]
    assert [label for label, _r in first] == ["small aaa", "big", "small ccc"] and first_kwargs == {"esc50": True}
    assert draw.call_args_list[1].kwargs == {"esc50": False}  # one dataset of 10 classes: not ESC-50's numbers
    # a --folds run shown beside its set's run of all folds (the same settings): told apart by their folds
    labels = [label for label, _r in results_report._overview_labels([results[1], result("big", "bbb", [0.8, 0.7])])]
    assert labels == ["big (folds 1)", "big (folds 1, 2)"]
    labels = [label for label, _r in results_report._overview_labels(results + [result("small", "ccc", [0.7])])]
    assert labels == ["small aaa", "big", "small ccc (folds 1, 2, 3, 4, 5)", "small ccc (folds 1)"]


def test_show_results_lists_each_tflite_format_and_names_a_damaged_one(tmp_path):
    from esc50_baseline.reports import results as results_report
    for fmt, text in (("int8", "folds_results: {1: {accuracy: 0.75}}\noverall: {accuracy: 0.75, logloss: 0.5}\n"),
                      ("float16", "overall: {acc")):
        (tmp_path / f"tflite_{fmt}").mkdir()
        (tmp_path / f"tflite_{fmt}" / "results.yaml").write_text(text)
    damaged, int8 = results_report._tflite_lines(str(tmp_path))
    assert int8.split() == ["as", "TFLite", "int8", "75.0", "%", "(one", "fold)", "0.500"]
    assert damaged.strip().startswith(f"(unreadable) {tmp_path / 'tflite_float16' / 'results.yaml'}: ")
    assert damaged.endswith("run task_esc50_tflite.py again to write it anew")
    (tmp_path / "tflite_float16" / "results.yaml").write_text("overall: {accuracy: 0.75, logloss: 0.5}\n")
    lacking, _int8 = results_report._tflite_lines(str(tmp_path))  # valid YAML without its folds: named, not a crash
    assert "tflite_float16" in lacking and ": it lacks 'folds_results'; run task_esc50_tflite.py" in lacking


def test_a_folds_run_has_a_results_folder_of_its_own_shown_while_newer_than_the_whole(tmp_path):
    from esc50_baseline.reports import results as results_report
    from esc50_baseline.run import setup
    assert setup.fold_subset([1, 2, 3], [1, 2, 3]) is None  # the set's own folds: its results folder
    assert setup.fold_subset([1, 3], [1, 2, 3]) == "folds_1_3"
    assert setup.fold_subset(["A b", "C/d"], ["A b", "C/d", "E"]) == "folds_A-b_C-d"  # any fold label, one name
    whole, subset, alone = (tmp_path / "s_aaa", tmp_path / "s_aaa" / "folds_2", tmp_path / "t_bbb" / "folds_1")
    for folder, age in ((whole, 200), (subset, 300), (alone, 300)):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "results.yaml").write_text("set_id: s\n")
        os.utime(folder / "results.yaml", (time.time() - age, time.time() - age))
    # the subset is older than the set's results of all folds (a part of them): not listed; a set with no
    # results of all folds yet lists its subset run
    assert results_report.evaluated_runs(str(tmp_path)) == sorted(str(f / "results.yaml") for f in (whole, alone))
    os.utime(subset / "results.yaml")  # run again since: newer than the whole, so listed
    assert results_report.evaluated_runs(str(tmp_path)) == sorted(str(f / "results.yaml") for f in (whole, subset, alone))
