"""What a new user meets first: help that exits 0, aligned listings, paths read from where the parameter file is,
hints that repeat the user's own flags, another dataset's CSV as it is, and a machine where a Linux-only piece is
missing."""
import os
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT, make_dataset, write_meta

SCRIPT = os.path.join(ROOT, "task_esc50.py")


def run(args, cwd, script=SCRIPT):
    return subprocess.run([sys.executable, script] + args, cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("script,flag", [(SCRIPT, "--help"), (SCRIPT, "-h"),
                                         (os.path.join(ROOT, "task_esc50_tflite.py"), "--help"),
                                         (os.path.join(ROOT, "model_size_calculation.py"), "--help")])
def test_asking_for_help_prints_the_usage_and_exits_0(tmp_path, script, flag):
    done = run([flag], tmp_path, script)
    assert done.returncode == 0, done.stderr
    assert "python " in done.stdout and "Error" not in done.stdout + done.stderr


def params_file(tmp_path, **paths):
    """A copy of the shipped YAML in a folder of its own, with its path section changed."""
    with open(os.path.join(ROOT, "task_esc50.yaml"), encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    raw["defaults"]["path"].update(paths)
    folder = tmp_path / "config"
    folder.mkdir()
    path = folder / "mine.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def evaluated(application, set_id, folder_hash, parameter_hash, accuracies, when="2026-12-01 10:00:00"):
    """A results.yaml as the evaluation stage writes it (the keys the listings read)."""
    folder = application / "evaluator" / f"{set_id}_{folder_hash}"
    folder.mkdir(parents=True)
    folds = list(range(1, len(accuracies) + 1))
    (folder / "results.yaml").write_text(yaml.safe_dump({
        "set_id": set_id, "parameter_hash": parameter_hash, "folds": folds, "evaluated_at": when,
        "overall": {"accuracy": sum(accuracies) / len(accuracies), "logloss": 0.5},
        "folds_results": {f: {"accuracy": a, "logloss": 0.5} for f, a in zip(folds, accuracies)},
        "class_wise": {}}))


def test_relative_paths_of_the_yaml_are_read_from_its_folder_and_show_sets_gives_accuracy_aligned(tmp_path):
    """path.application: runs (relative) is the parameter file's folder's runs/, whatever the working folder; a set's
    cross-validated run there is shown beside it, the descriptions in one column however long the names."""
    from esc50_baseline import config
    path = params_file(tmp_path, application="runs")
    parameters = config.Parameters(str(path))
    evaluated(tmp_path / "config" / "runs", "vgg7", "abc", config.params_hash(parameters.resolve("vgg7")),
              [0.8, 0.82, 0.84])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run(["--params_file", str(path), "--show_sets"], elsewhere)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()[1:-1]
    starts = {line.index(parameters.sets[line[3:].split()[0]]["description"]) for line in lines}
    assert len(starts) == 1  # one column for every description
    assert "82.0 +- 2.0 % (3)" in next(line for line in lines if line[3:].startswith("vgg7 "))
    assert str(tmp_path / "config" / "runs") in done.stdout.splitlines()[-1]
    assert not (elsewhere / "runs").exists()


def test_show_results_shows_one_run_a_set_and_says_how_to_see_the_others(tmp_path):
    from esc50_baseline import config
    path = params_file(tmp_path, application=str(tmp_path / "runs"))
    today = config.params_hash(config.Parameters(str(path)).resolve("vgg7"))
    evaluated(tmp_path / "runs", "vgg7", "aaa", today, [0.8, 0.8], when="2026-12-01 10:00:00")
    evaluated(tmp_path / "runs", "vgg7", "bbb", "other", [0.7, 0.7], when="2026-12-02 10:00:00")
    evaluated(tmp_path / "runs", "cnn3", "ccc", "old", [0.6], when="2026-12-02 10:00:00")
    done = run(["--params_file", str(path), "--show_results"], tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("   vgg7 ") or line.startswith("   cnn3 ")]
    assert len(rows) == 2 and rows[0].split()[1] in ("aaa", "ccc") and "bbb" not in done.stdout.split("other run")[0]
    assert "and 1 other run(s) of vgg7" in done.stdout and "--show_results --set vgg7" in done.stdout
    every = run(["--params_file", str(path), "--show_results", "--set", "vgg7"], tmp_path)
    assert "aaa" in every.stdout and "bbb" in every.stdout and "ccc" not in every.stdout


def test_a_missing_dataset_folder_from_the_yaml_is_named_resolved(tmp_path):
    path = params_file(tmp_path, dataset="data/ESC-50", dataset_url="file:///nowhere.zip")
    done = run(["--params_file", str(path), "--set", "quick", "--predict", str(path)], tmp_path)
    assert done.returncode == 2
    assert str(tmp_path / "config" / "data" / "ESC-50") in done.stderr and "Traceback" not in done.stderr


def test_the_hint_after_predict_on_an_untrained_set_repeats_the_users_flags(tmp_path):
    make_dataset(str(tmp_path / "d"), n_classes=2, n_folds=2, per_fold=1, seconds=1.0)
    clip = next((tmp_path / "d" / "audio").iterdir())
    done = run(["--set", "quick", "--dataset_path", str(tmp_path / "d"), "--param",
                f"path.application={tmp_path / 'runs'}", "--predict", str(clip)], tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert (f"python task_esc50.py --set quick --dataset_path {tmp_path / 'd'} --param "
            f"path.application={tmp_path / 'runs'} first") in done.stderr


def test_another_datasets_csv_is_read_through_its_column_names_and_fold_folders(tmp_path):
    """UrbanSound8K's CSV as released: slice_file_name, fsID, ..., fold, classID, class; files in fold folders."""
    from esc50_baseline.data.dataset import Dataset
    from esc50_baseline.errors import UserError
    rows = make_dataset(str(tmp_path), n_classes=2, n_folds=2, per_fold=2, seconds=1.0)
    for row in rows:
        folder = tmp_path / "audio" / f"fold{row['fold']}"
        folder.mkdir(exist_ok=True)
        os.rename(tmp_path / "audio" / row["filename"], folder / row["filename"])
    us8k = [{"slice_file_name": r["filename"], "fsID": r["src_file"], "start": 0, "end": 1, "salience": 1,
             "fold": r["fold"], "classID": r["target"], "class": r["category"]} for r in rows]
    write_meta(str(tmp_path), us8k)
    columns = {"filename": "slice_file_name", "fold": "fold", "target": "classID", "category": "class",
               "src_file": "fsID"}
    dataset = Dataset(str(tmp_path), columns=columns, file_pattern="fold{fold}/{filename}")
    assert dataset.folds == [1, 2] and dataset.labels == ["class_0", "class_1"] and not dataset.missing_audio()
    assert dataset.audio_path(dataset.clips[0]).endswith(os.path.join("audio", "fold1", rows[0]["filename"]))
    assert {c.src_file for c in dataset.clips} == {r["src_file"] for r in rows}
    with pytest.raises(UserError, match="its header holds .slice_file_name., .fsID.") as e:
        Dataset(str(tmp_path))  # ESC-50's column names: named, with the columns the CSV has
    assert "dataset.columns" in str(e.value)
    with pytest.raises(UserError, match="dataset.file_pattern"):
        Dataset(str(tmp_path), columns=columns, file_pattern="fold{split}/{filename}")


def test_the_urbansound8k_set_reads_urbansound8k_as_released(tmp_path):
    from esc50_baseline import config
    from esc50_baseline.data.dataset import Dataset
    d = config.Parameters(os.path.join(ROOT, "task_esc50.yaml")).resolve("urbansound8k")["dataset"]
    (tmp_path / "metadata").mkdir()
    (tmp_path / "audio" / "fold3").mkdir(parents=True)
    (tmp_path / "audio" / "fold3" / "7-0-0-1.wav").write_bytes(b"")
    (tmp_path / "audio" / "fold3" / "8-0-0-0.wav").write_bytes(b"")
    (tmp_path / "metadata" / "UrbanSound8K.csv").write_text(
        "slice_file_name,fsID,start,end,salience,fold,classID,class\n7-0-0-1.wav,7,0,4,1,3,1,car_horn\n"
        "8-0-0-0.wav,8,0,4,1,3,0,air_conditioner\n")
    dataset = Dataset(str(tmp_path), d["subset"], d["meta_file"], d["audio_folder"], d["columns"], d["file_pattern"])
    assert dataset.labels == ["air_conditioner", "car_horn"] and dataset.folds == [3] and not dataset.missing_audio()


def test_the_microcontroller_check_is_skipped_with_a_reason_where_its_interpreter_has_no_wheels(monkeypatch):
    import importlib.util
    import platform
    from esc50_baseline.tflite import micro
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    monkeypatch.setattr(platform, "machine", lambda: "arm64")
    assert "Linux x86_64 only" in micro.unavailable_here() and "Darwin arm64" in micro.unavailable_here()
    monkeypatch.setattr(platform, "system", lambda: "Linux")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    assert micro.unavailable_here() is None  # there it is an install to make, said where it is used


def test_fold_processes_share_every_core_where_the_system_cannot_pin(monkeypatch):
    from esc50_baseline.run import fold_processes
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert fold_processes.usable_cpus() == {0, 1, 2, 3}


def test_a_quick_run_on_fifty_classes_prints_under_150_lines_and_writes_every_table(tmp_path):
    """ESC-50's 50 classes: the progress lines and the DCASE class and category tables on the console; the precision,
    recall and F1 of every class in tables.txt (printed on request)."""
    make_dataset(str(tmp_path / "d"), n_classes=50, n_folds=2, per_fold=1, seconds=1.0)
    args = ["--set", "quick", "--dataset_path", str(tmp_path / "d"), "--param", "learner.epochs=1",
            "--param", "feature_extractor.clip_seconds=1.0", "--param", "detection.window_seconds=1.0",
            "--param", f"path.application={tmp_path / 'runs'}"]
    done = run(args, tmp_path)
    assert done.returncode == 0, done.stderr
    assert len((done.stdout + done.stderr).splitlines()) < 150 and "Precision" not in done.stdout
    tables = next((tmp_path / "runs" / "evaluator").glob("quick_*/tables.txt")).read_text()
    assert "Precision" in tables and tables.count("class_49") == 2  # the class table and the precision table
    again = run(args + ["--param", "evaluation.print_class_metrics=true"], tmp_path)
    assert "Precision" in again.stdout
