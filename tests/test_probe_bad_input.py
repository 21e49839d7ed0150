"""The bad-input probe (tools/probe_bad_input.py): every case, through the command line, on a small synthetic
dataset: a user error is one sentence naming what is at fault, exit status 2, no traceback; what should work does."""
import os
import sys

import pytest

from conftest import ROOT, make_dataset

sys.path.insert(0, os.path.join(ROOT, "tools"))
from probe_bad_input import CASES, Scratch, run_case  # noqa: E402


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("probe") / "esc50")
    make_dataset(root, n_classes=3, n_folds=3, per_fold=2, seconds=1.0)
    return root


def test_the_probe_has_every_family_and_at_least_40_cases():
    families = {case.family for case in CASES}
    assert len(CASES) >= 40 and {"settings", "parameter files", "datasets", "rows outside", "outputs",
                                 "size command", "pipes"} <= families


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_case_answers_as_it_should(case, dataset, tmp_path):
    ok, status, said = run_case(case, Scratch(dataset, str(tmp_path)))
    assert ok, f"exit {status}: {said}"


def test_files_of_one_name_in_two_folders_keep_names_of_their_own():
    from esc50_baseline.stages.predict import short_names
    paths = ["/r/a/x.wav", "/r/b/x.wav", "/r/b/y.wav"]
    assert short_names(paths) == [os.path.join("a", "x.wav"), os.path.join("b", "x.wav"), os.path.join("b", "y.wav")]
    assert short_names(["/r/a/x.wav", "/r/b/y.wav"]) == ["x.wav", "y.wav"]


def test_a_listing_of_runs_it_cannot_write_to_shows_them_without_the_figure(tmp_path, monkeypatch, capsys):
    import yaml
    from esc50_baseline.reports import results
    folder = tmp_path / "runs" / "evaluator" / "quick_abc"
    folder.mkdir(parents=True)
    (folder / "results.yaml").write_text(yaml.safe_dump({
        "set_id": "quick", "parameter_hash": "h", "folds": [1], "evaluated_at": "2026-12-01 10:00:00",
        "overall": {"accuracy": 0.5, "logloss": 1.0}, "folds_results": {1: {"accuracy": 0.5, "logloss": 1.0}}}))

    def read_only(*args):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(results, "overview_figure", read_only)
    results.show_results({"path": {"application": str(tmp_path / "runs")}})
    out = capsys.readouterr().out
    assert "quick" in out and "No figure" in out and "Permission denied" in out


def test_predict_says_which_files_of_a_folder_it_leaves_out(tmp_path, capsys):
    from esc50_baseline.stages.predict import find_audio
    for name in ("a.wav", "b.WAV", "notes.txt", "cover.jpg"):
        (tmp_path / name).write_bytes(b"")
    assert [os.path.basename(p) for p in find_audio(str(tmp_path))] == ["a.wav", "b.WAV"]
    assert "2 file(s)" in capsys.readouterr().err
