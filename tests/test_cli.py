"""The whole command line on a tiny synthetic dataset, in a subprocess, as a user runs it."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT, make_dataset

SCRIPT = os.path.join(ROOT, "task_esc50.py")


def run(args, cwd):
    return subprocess.run([sys.executable, SCRIPT] + args, cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def cli_dataset(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("cli") / "esc50")
    make_dataset(root, n_classes=3, n_folds=3, per_fold=3)
    return root


def test_quick_set_end_to_end_then_cached(cli_dataset, tmp_path):
    args = ["--dataset_path", cli_dataset, "--set", "quick", "--param", "learner.epochs=3",
            "--param", f"path.application={tmp_path / 'system'}"]
    first = run(args, tmp_path)
    assert first.returncode == 0, first.stderr
    out = first.stdout
    # a quick run's console: a line a stage's step and the tables, no Keras line per epoch
    assert len((out + first.stderr).splitlines()) < 150 and "Epoch 1/" not in out
    assert "  Fold 3: epoch 3/3, loss " in out
    assert "Fold 3" in out and "Logloss" in out and "Accuracy" in out and "Category" not in out.split("Class")[0]
    assert "Total" in out  # model size report
    results = list((tmp_path / "system" / "evaluator").glob("quick_*/results.yaml"))
    assert len(results) == 1
    data = yaml.safe_load(results[0].read_text())
    # the reported figures are those of the written predictions, recomputed here from the CSV
    predictions = pd.read_csv(next((tmp_path / "system" / "recognizer").glob("*/res_fold_3.csv")))
    assert len(predictions) == 9 and set(predictions["filename"].str[:2]) == {"3-"}
    true_probability = predictions.apply(lambda row: row[row["true_label"]], axis=1)
    assert data["folds"] == [3]
    # the training time is the epochs' own, logged one by one in the fold's history CSV
    history = pd.read_csv(next((tmp_path / "system" / "learner").glob("*/logs_fold_3/history.csv")))
    assert list(history["epoch"]) == [1, 2, 3] and (history["seconds"] > 0).all()
    assert data["training_seconds"] == {3: {"seconds": pytest.approx(history["seconds"].sum(), abs=0.051),
                                            "timed_epochs": 3, "epochs": 3}}
    assert f"Fold 3    {history['seconds'].sum():.0f} s in 3 epochs" in out
    assert data["overall"]["accuracy"] == pytest.approx((predictions["true_label"] == predictions["predicted_label"]).mean())
    assert data["overall"]["logloss"] == pytest.approx(-np.log(true_probability).mean(), rel=1e-4)
    # the three synthetic classes take ESC-50 targets 0-2, all of them animals: one category row, the overall figures
    category = out[out.index("Category"):].splitlines()[2].split("|")
    assert category[0].strip() == "Animals" and category[-1].strip() == f"{100 * data['overall']['accuracy']:.1f}%"
    for name in ("confusion_matrix.csv", "confusion_matrix.png", "class_metrics.csv", "tables.txt"):
        assert (results[0].parent / name).exists()
    second = run(args, tmp_path)
    assert second.returncode == 0, second.stderr
    assert "trained model cached" in second.stdout and "predictions cached" in second.stdout
    assert "Epoch 1/" not in second.stdout
    shifted = run(args + ["--param", "testing.time_shifts=[0, 10, -10]"], tmp_path)
    assert shifted.returncode == 0, shifted.stderr
    assert "trained model cached" in shifted.stdout and "predictions cached" not in shifted.stdout
    shown = run(["--show_results", "--param", f"path.application={tmp_path / 'system'}"], tmp_path)
    assert "quick" in shown.stdout and "%" in shown.stdout
    figure = tmp_path / "system" / "evaluator" / "results_overview.png"
    assert f"The same as a figure: {figure}" in shown.stdout and figure.read_bytes()[:4] == b"\x89PNG"
    rows = [line for line in shown.stdout.splitlines() if line.strip().startswith("quick")]
    assert len(rows) == 1 and "and 1 other run(s) of quick" in shown.stdout  # one run a set: the newest here
    shown = run(["--show_results", "--set", "quick", "--param", f"path.application={tmp_path / 'system'}"], tmp_path)
    rows = [line for line in shown.stdout.splitlines() if line.strip().startswith("quick")]
    assert len(rows) == 2 and all(f"{data['training_seconds'][3]['seconds'] / 60:.1f} min" in r for r in rows)
    # its two rows told apart by what they were run with, against the set in the YAML (20 epochs, 1 shift)
    shown_with = [line.strip() for line in shown.stdout.splitlines() if line.strip().startswith("with ")]
    assert sorted(shown_with) == ["with learner.epochs=3", "with learner.epochs=3, testing.time_shifts=[0, 10, -10]"]
    check_predict(cli_dataset, args, tmp_path, predictions)


def check_predict(dataset, args, tmp_path, predictions):
    """--predict with the model the run above trained, on a folder: two test clips of fold 3, where it says
    what the testing stage wrote for them, an unreadable file, and a long file read in windows."""
    import json
    import soundfile as sf
    clips = sorted(name for name in os.listdir(os.path.join(dataset, "audio")) if name.startswith("3-"))[:3]
    folder = tmp_path / "to_classify"
    folder.mkdir()
    for name in clips[:2]:
        (folder / name).write_bytes(open(os.path.join(dataset, "audio", name), "rb").read())
    (folder / "broken.wav").write_text("not audio")
    # 15 s, stereo, 22.05 kHz: three 5 s windows
    audio = np.concatenate([sf.read(os.path.join(dataset, "audio", name))[0] for name in clips])
    sf.write(str(folder / "long.wav"), np.stack([audio[::2], audio[::2]], axis=1), 22050)
    table = run(args + ["--predict", str(folder)], tmp_path)
    assert table.returncode == 0, table.stderr
    assert clips[0] in table.stdout and "broken.wav" in table.stdout and "error:" in table.stdout
    listed = run(args + ["--predict", str(folder), "--json", "--windows", "--top_k", "2"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert data["set"] == "quick" and len(data["models"]) == 1
    answered = {os.path.basename(entry["file"]): entry for entry in data["files"] if "top" in entry}
    assert sorted(answered) == sorted(clips[:2] + ["long.wav"])
    by_name = predictions.set_index("filename")
    for name in clips[:2]:
        top = answered[name]["top"]
        assert top[0]["label"] == by_name.loc[name, "predicted_label"] and len(top) == 2
        for guess in top:
            assert guess["probability"] == pytest.approx(by_name.loc[name, guess["label"]], abs=1e-5)
    entry = answered["long.wav"]
    assert entry["windows"] == 3 and len(entry["window_scores"]) == 3 and abs(entry["duration_s"] - 15.0) < 0.01
    assert len(entry["top"]) == 2 and entry["top"][0]["probability"] >= entry["top"][1]["probability"]
    assert all(0.0 <= t["probability"] <= 1.0 for t in entry["top"])


def test_show_sets_lists_sets(tmp_path):
    result = run(["--show_sets"], tmp_path)
    assert result.returncode == 0
    for set_id in ("cnn3", "cnn4", "cnn5", "quick"):
        assert set_id in result.stdout
    help_text = run(["--help"], tmp_path).stdout
    for flag in ("--set", "--folds", "--dataset_path", "--param", "overwrite", "show_results"):
        assert flag in help_text


def assert_user_error(result, *fragments):
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr  # progress lines may come before it
    for fragment in fragments:
        assert fragment in errors[0]


def test_missing_audio_file_stops_before_training(tmp_path):
    root = str(tmp_path / "d")
    rows = make_dataset(root, n_classes=2, n_folds=2, per_fold=1, seconds=0.5)
    os.remove(os.path.join(root, "audio", rows[0]["filename"]))
    result = run(["--dataset_path", root, "--param", f"path.application={tmp_path / 's'}"], tmp_path)
    assert_user_error(result, rows[0]["filename"], "missing")


def test_corrupt_wav_is_named(tmp_path):
    root = str(tmp_path / "d")
    rows = make_dataset(root, n_classes=2, n_folds=2, per_fold=1, seconds=0.5)
    with open(os.path.join(root, "audio", rows[1]["filename"]), "wb") as f:
        f.write(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    result = run(["--dataset_path", root, "--param", f"path.application={tmp_path / 's'}"], tmp_path)
    assert_user_error(result, rows[1]["filename"], "could not be read", "on_bad_audio")
    assert not list((tmp_path / "s").glob("learner/*/*.keras"))


def test_unknown_yaml_key_is_named(tmp_path):
    text = open(os.path.join(ROOT, "task_esc50.yaml")).read().replace("    batch_size: 16", "    batch_sise: 16")
    params = tmp_path / "p.yaml"
    params.write_text(text)
    result = run(["--params_file", str(params), "--show_sets"], tmp_path)
    assert_user_error(result, "learner.batch_sise", "learner.batch_size")


def test_bad_dataset_path_and_folds(tmp_path, cli_dataset):
    assert_user_error(run(["--dataset_path", str(tmp_path / "nowhere")], tmp_path), "does not exist")
    assert_user_error(run(["--dataset_path", cli_dataset, "--folds", "7",
                           "--param", f"path.application={tmp_path / 's'}"], tmp_path), "Fold(s) 7")
    assert_user_error(run(["--dataset_path", cli_dataset, "--folds", "2", "--param", "learner.validation_folds=[2]",
                           "--param", f"path.application={tmp_path / 's'}"], tmp_path),
                      "Fold 2 is both tested and held out for validation (learner.validation_folds)")


def test_custom_dataset_ten_folds_two_classes(tmp_path):
    """UrbanSound8K-style: 10 folds, own csv name and audio folder, no esc10/src_file/take columns; fold 5
    held out for validation."""
    root = tmp_path / "urban"
    rows = make_dataset(str(root), n_classes=2, n_folds=10, per_fold=1, seconds=1.0, names=["siren", "drill"])
    os.rename(root / "audio", root / "clips")
    os.makedirs(root / "metadata")
    import csv
    with open(root / "metadata" / "urban.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["filename", "fold", "target", "category"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    result = run(["--dataset_path", str(root), "--set", "quick", "--param", "learner.epochs=2",
                  "--param", "dataset.meta_file=metadata/urban.csv", "--param", "dataset.audio_folder=clips",
                  "--param", "general.active_folds=[1, 10]", "--param", "learner.validation_folds=[5]",
                  "--param", f"path.application={tmp_path / 's'}"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "20 clips, 2 classes, folds 1, 2, 3, 4, 5, 6, 7, 8, 9, 10" in result.stdout
    # two clips a fold: all but the test fold's and fold 5's train, fold 5's validate
    assert "Fold 1: 16 training, 2 validation clips" in result.stdout
    assert "Fold 10: 16 training, 2 validation clips" in result.stdout
    assert "Fold 1" in result.stdout and "Fold 10" in result.stdout and "siren" in result.stdout
    assert "Category" not in result.stdout  # ESC-50's major categories do not apply
    out = next((tmp_path / "s" / "evaluator").glob("quick_*"))
    assert (out / "confusion_matrix_fold_1.png").exists() and (out / "confusion_matrix_fold_10.png").exists()


def test_waveform_copies_and_no_validation_split(cli_dataset, tmp_path):
    system = tmp_path / "system"
    args = ["--dataset_path", cli_dataset, "--set", "quick", "--param", "learner.epochs=2",
            "--param", "learner.validation_amount=0", "--param", "learner.augmentation.waveform.copies=2",
            "--param", "learner.augmentation.waveform.stretch=[]",  # stretch and pitch: slow, and not what is tested
            "--param", "learner.augmentation.waveform.pitch_semitones=0",
            "--param", "learner.model=crnn_att", "--param", f"path.application={system}"]
    result = run(args, tmp_path)
    assert result.returncode == 0, result.stderr
    # quick trains on folds 1-2 of 3: 2 copies of each of their 18 clips, and no validation clips
    assert "2 augmented copies of 18 training clips" in result.stdout
    assert "18 training, 0 validation clips" in result.stdout
    cached = list((system / "features_augmented").glob("*/*.npy"))
    assert len(cached) == 36 and all(".copy" in p.name for p in cached)
    assert "Accuracy" in result.stdout
    # only training reads the copies: with the fold's model cached, none are made again
    shutil.rmtree(system / "features_augmented")
    again = run(args, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "not needed, every active fold's model is cached" in again.stdout and "Fold 3: trained model cached" in \
        again.stdout
    assert not list((system / "features_augmented").glob("*/*.npy"))
    [model] = system.glob("learner/*/model_fold_3.keras")
    model.unlink()  # a fold to train again: its copies are made first
    third = run(args, tmp_path)
    assert third.returncode == 0, third.stderr
    assert "2 augmented copies of 18 training clips" in third.stdout and model.exists()
    assert len(list((system / "features_augmented").glob("*/*.npy"))) == 36


def test_grouped_validation_split_then_overwrite_recomputes_the_same_numbers(tmp_path):
    """Takes of one recording share a src_file: the validation clips of a real run are whole recordings.
    --overwrite recomputes every stage (features, model, predictions) and, seeded, gets the same numbers."""
    root = str(tmp_path / "takes")
    make_dataset(root, n_classes=3, n_folds=3, per_fold=4, takes=2, seconds=2.0)
    system = tmp_path / "system"
    args = ["--dataset_path", root, "--set", "quick", "--param", "learner.epochs=2",
            "--param", "learner.validation_amount=0.25", "--param", f"path.application={system}"]
    first = run(args, tmp_path)
    assert first.returncode == 0, first.stderr
    split = pd.read_csv(next(system.glob("learner/*/split_fold_3.csv")))
    roles = split.groupby("src_file")["role"].unique()
    assert (roles.str.len() == 1).all()  # no recording straddles two roles
    validation = split[split["role"] == "validation"]
    # a quarter of each class's 8 training clips, and each class's validation clips are one recording's takes
    assert sorted(validation.groupby("category").size()) == [2, 2, 2]
    assert (validation.groupby("category")["src_file"].nunique() == 1).all()
    assert set(split.loc[split["role"] == "test", "fold"]) == {3} and 3 not in set(split.loc[split["role"] != "test", "fold"])

    feature_file = next(system.glob("features/*/*.npy"))
    model_file = next(system.glob("learner/*/model_fold_3.keras"))
    predictions = next(system.glob("recognizer/*/res_fold_3.csv"))
    stamps = [p.stat().st_mtime_ns for p in (feature_file, model_file, predictions)]
    before = predictions.read_text()
    again = run(args + ["--overwrite"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert ": trained in " in again.stdout and "cached" not in again.stdout
    assert all(p.stat().st_mtime_ns > stamp for p, stamp in zip((feature_file, model_file, predictions), stamps))
    assert predictions.read_text() == before
