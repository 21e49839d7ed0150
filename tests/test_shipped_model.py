"""A set's final model (--final), the model shipped in the repository (pretrained/SET/), which answers on a fresh
copy with no dataset and nothing trained, and the live stream (--predict -)."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT, make_dataset
from test_tflite import NO_TENSORFLOW

from esc50_baseline import config
from esc50_baseline.run import shipped

PRETRAINED = os.path.join(ROOT, "pretrained")
# what a fresh clone does not have: the version control, caches, datasets, a shipped folder being made
LEFT_OUT = shutil.ignore_patterns(".git", "system", "datasets", "__pycache__", ".pytest_cache", "*.new", "*.old")


def fresh_copy(dest):
    """The repository as a clone has it: no dataset, no cache."""
    shutil.copytree(ROOT, dest, ignore=LEFT_OUT)
    return str(dest)


def run(repo, *args, env=None, stdin=None):
    done = subprocess.run([sys.executable, os.path.join(repo, "task_esc50.py"), *args], cwd=repo, input=stdin,
                          capture_output=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def checksums(folder):
    """{file: SHA-256} as the folder's model card states them (the lines `sha256sum -c` reads)."""
    with open(os.path.join(folder, shipped.CARD_FILE), encoding="utf-8") as f:
        return dict((name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", f.read(), re.M))


def check_shipped_folder(folder):
    """Every file of the folder but the card is in the card with its SHA-256, and each is what the card says."""
    import hashlib
    stated = checksums(folder)
    files = sorted(name for name in os.listdir(folder) if name != shipped.CARD_FILE)
    assert sorted(stated) == files
    for name in files:
        with open(os.path.join(folder, name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == stated[name], f"{name} is not the file its card names"


def stereo_wav(path, seconds, fs=22050, seed=0):
    """A recording as a user has one: not ESC-50's rate, two channels."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    y = 0.3 * np.sin(2 * np.pi * 600 * t) * (1 + np.sin(2 * np.pi * 2 * t)) + 0.02 * rng.standard_normal(len(t))
    sf.write(path, np.stack([y, 0.5 * y], axis=1), fs, subtype="PCM_16")
    return path


# -- the model shipped for the active set -------------------------------------------------------------------------

def test_the_active_set_has_a_shipped_model_whose_files_match_its_card():
    parameters = config.Parameters(config.parameters.SHIPPED)
    params = parameters.resolve()
    folder = shipped.shipped_folder(params["set_id"])
    assert os.path.isdir(folder), "no model is shipped for the active set: run tools/ship_model.py"
    for name in os.listdir(PRETRAINED):
        check_shipped_folder(os.path.join(PRETRAINED, name))
    total = sum(os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder))
    assert total < 2 * 1024 * 1024
    # it answers for the set as the YAML has it: a changed setting of the network asks for the model to be made again
    ctx, why_not = shipped.shipped_context(params)
    assert ctx is not None, why_not
    assert len(ctx.dataset.labels) == 50 and "dog" in ctx.dataset.labels
    card = open(os.path.join(folder, shipped.CARD_FILE), encoding="utf-8").read()
    for stated in ("CC BY-NC 3.0", "python task_esc50.py --final", "Commit: ", "Machine: ", "over the five folds",
                   "none of these"):
        assert stated in card


def test_a_changed_setting_stops_the_shipped_model_from_answering():
    parameters = config.Parameters(config.parameters.SHIPPED)
    params = parameters.resolve(overrides=["learner.epochs=3"])
    ctx, why_not = shipped.shipped_context(params)
    assert ctx is None and "other settings" in why_not


def test_a_fresh_copy_classifies_with_the_shipped_model(tmp_path):
    """No dataset, nothing trained: --predict, --predict_format raw_int8 without TensorFlow, --detect and the stream
    work, and say that the shipped model answered."""
    repo = fresh_copy(tmp_path / "repo")
    wav = stereo_wav(str(tmp_path / "recording.wav"), 7.0)
    labels = open(os.path.join(PRETRAINED, config.Parameters(config.parameters.SHIPPED).active_set, "labels.txt")
                  ).read().split("\n")
    keras = json.loads(run(repo, "--predict", wav, "--json", "--windows"))
    assert "shipped" in keras["answered_by"] and keras["format"] == "keras"
    (entry,) = keras["files"]
    assert entry["windows"] == 2 and entry["duration_s"] == pytest.approx(7.0, abs=0.01)
    p = [guess["probability"] for guess in entry["top"]]
    assert all(guess["label"] in labels for guess in entry["top"]) and p == sorted(p, reverse=True) and 0 < p[0] <= 1
    table = run(repo, "--predict", wav)
    assert table.splitlines()[0].startswith(f"Set {keras['set']} (keras): the model shipped in")
    assert entry["top"][0]["label"][:17] in table
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        assert table.splitlines()[0] in f.read()  # the README's first screen shows what the command prints

    env = dict(os.environ, PYTHONPATH=NO_TENSORFLOW)
    raw = json.loads(run(repo, "--predict", wav, "--json", "--predict_format", "raw_int8", env=env))
    assert "shipped" in raw["answered_by"] and raw["models"][0].endswith("model_final_raw_int8.tflite")

    detected = run(repo, "--detect", wav, "--detect_output", str(tmp_path / "found"))
    assert "shipped" in detected.splitlines()[0] and (tmp_path / "found" / "detections.tsv").exists()

    # the stream: the same recording's samples at the model's rate, piped in as raw PCM, window after window (a
    # window every 5 s) give the windows of --predict --windows
    ten = sf.read(stereo_wav(str(tmp_path / "ten.wav"), 10.0, fs=44100, seed=1))[0].mean(axis=1)
    pcm = (np.clip(ten, -1, 1) * 32767).astype("<i2")  # two whole windows
    sf.write(str(tmp_path / "same.wav"), pcm, 44100, subtype="PCM_16")
    by_file = json.loads(run(repo, "--predict", str(tmp_path / "same.wav"), "--json", "--windows"))["files"][0]
    streamed = run(repo, "--predict", "-", "--rate", "44100", "--hop_seconds", "5", "--json", stdin=pcm.tobytes())
    lines = [json.loads(line) for line in streamed.splitlines()]
    assert [line["end_s"] for line in lines] == [5.0, 10.0]
    for line, window in zip(lines, by_file["window_scores"]):
        assert line["latency_ms"] >= 0
        assert [g["label"] for g in line["top"]] == [g["label"] for g in window]
        assert [g["probability"] for g in line["top"]] == pytest.approx([g["probability"] for g in window], abs=1e-5)


def test_the_stream_resamples_and_labels_each_window_as_it_arrives(tmp_path):
    """16 kHz stereo PCM, a 3 s window every 2 s: a line a window, with its end time and the decision's latency."""
    repo = fresh_copy(tmp_path / "repo")
    fs = 16000
    t = np.arange(12 * fs) / fs
    y = 0.3 * np.sin(2 * np.pi * 500 * t)
    pcm = (np.stack([y, y], axis=1) * 32767).astype("<i2").tobytes()
    out = run(repo, "--predict", "-", "--rate", str(fs), "--channels", "2", "--window_seconds", "3", "--hop_seconds",
              "2", stdin=pcm)
    head, *lines = out.splitlines()
    assert "3 s windows every 2 s of 2-channel 16-bit PCM at 16000 Hz" in head and "shipped" in head
    ends = [float(line.split()[0]) for line in lines]
    assert ends == pytest.approx([3.0, 5.0, 7.0, 9.0, 11.0], abs=0.01)
    assert all(re.search(r"\(\d+ ms\)$", line) for line in lines)
    # a stream cut inside a sample frame is no 16-bit stereo PCM: one sentence, no traceback
    bad = subprocess.run([sys.executable, "task_esc50.py", "--predict", "-", "--channels", "2"], cwd=repo,
                         input=pcm[:4 * fs * 3 + 1], capture_output=True, timeout=600)
    assert bad.returncode == 2 and bad.stderr.decode().startswith("Error: --predict -: the stream ended in the middle")
    assert "Traceback" not in bad.stderr.decode()


# -- a final model of one's own, and making a shipped one -----------------------------------------------------------

def test_final_model_ships_and_a_users_own_takes_precedence(tmp_path):
    """tools/ship_model.py trains the set on every clip (task_esc50.py --final), converts it and ships it with a card
    whose checksums hold; with the dataset at hand the user's own final model answers, without it the shipped one."""
    repo = fresh_copy(tmp_path / "repo")
    data = str(tmp_path / "data")
    rows = make_dataset(data, n_classes=3, n_folds=3, per_fold=2)
    same = ["--set", "quick", "--param", "learner.epochs=2"]
    made = subprocess.run([sys.executable, "tools/ship_model.py", "--dataset_path", data, *same], cwd=repo,
                          capture_output=True, text=True, timeout=900)
    assert made.returncode == 0, made.stderr
    folder = os.path.join(repo, "pretrained", "quick")
    check_shipped_folder(folder)
    card = open(os.path.join(folder, shipped.CARD_FILE)).read()
    assert "python task_esc50.py --final --set quick --param learner.epochs=2 --dataset_path ESC-50" in card
    assert re.search(r"\| int8 \| \d+\.\d % \|", card)
    # the final model trained on every clip and tested none; its formats were made, and a device package
    cache = os.path.join(repo, "system", "task_esc50")
    split = open(next(os.path.join(here, "split_final.csv") for here, _d, files in os.walk(cache)
                      if "split_final.csv" in files)).read().splitlines()[1:]
    assert len(split) == len(rows) and not [line for line in split if line.endswith(",test")]
    tflite = {name for _here, dirs, files in os.walk(os.path.join(cache, "tflite")) for name in files + dirs}
    assert {"model_final_float32.tflite", "model_final_int8.tflite", "model_final_raw_int8.tflite",
            "micro_final"} <= tflite

    wav = stereo_wav(str(tmp_path / "r.wav"), 5.0)
    own = json.loads(run(repo, "--predict", wav, "--json", "--dataset_path", data, *same))
    assert own["answered_by"] == "the final model, trained on every clip"
    assert own["models"][0].startswith(cache)
    shipped_answer = json.loads(run(repo, "--predict", wav, "--json", *same))  # no dataset: the shipped one
    assert "shipped" in shipped_answer["answered_by"] and shipped_answer["models"][0].startswith(folder)
    mine, theirs = own["files"][0]["top"], shipped_answer["files"][0]["top"]
    assert [g["label"] for g in theirs] == [g["label"] for g in mine]
    assert [g["probability"] for g in theirs] == pytest.approx([g["probability"] for g in mine], abs=1e-5)
    # training the set again does not touch the shipped files
    run(repo, "--final", "--dataset_path", data, *same, "--overwrite")
    check_shipped_folder(folder)
