"""Ensemble sets: members listed in the YAML, their fold predictions averaged, evaluated like any set."""
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from conftest import ROOT, make_dataset
from esc50_baseline import config, results_io
from esc50_baseline.errors import UserError

SETS = """
active_set: both
sets:
  - set_id: small
    learner: {model: cnn3, epochs: 2, batch_size: 8, validation_amount: 0.0, monitor: {metric: last}}
  - set_id: other
    feature_extractor: {n_mels: 32}
    learner: {model: cnn4, epochs: 2, batch_size: 8, validation_amount: 0.0, monitor: {metric: last}}
    testing: {time_shifts: [0, 5]}
  - set_id: both
    description: small and other, averaged
    ensemble: [small, other]
"""


def params_file(tmp_path, sets_text=SETS):
    with open(os.path.join(ROOT, "task_esc50.yaml")) as f:
        defaults = yaml.safe_load(f)["defaults"]
    path = tmp_path / "ensemble.yaml"
    path.write_text(sets_text + yaml.safe_dump({"defaults": defaults}))
    return str(path)


def test_ensemble_resolves_members_with_the_same_overrides(tmp_path):
    p = config.Parameters(params_file(tmp_path))
    members = p.members("both", ["learner.epochs=7"])
    assert [m["set_id"] for m in members] == ["small", "other"]
    assert [m["learner"]["epochs"] for m in members] == [7, 7]
    assert members[1]["feature_extractor"]["n_mels"] == 32
    assert p.resolve("both")["ensemble"] == ["small", "other"] and p.members("small") == []


@pytest.mark.parametrize("entry, message", [
    ("ensemble: [small, nothere]", "member 'nothere' is not a defined set"),
    ("ensemble: [small]", "two or more set ids"),
    ("ensemble: [small, small]", "lists a set twice"),
    ("ensemble: [small, both]", "is itself an ensemble"),
    ("ensemble: [small, other]\n    learner: {epochs: 3}", "takes only set_id, description and ensemble"),
    ("ensemble: [small, esc10]", "reads the dataset differently"),
])
def test_bad_ensembles_are_named(tmp_path, entry, message):
    text = SETS + f"""  - set_id: bad
    {entry}
  - set_id: esc10
    dataset: {{subset: esc10}}
"""
    with pytest.raises(UserError, match=message):
        config.Parameters(params_file(tmp_path, text))


def run(script, args, cwd):
    return subprocess.run([sys.executable, os.path.join(ROOT, script)] + args, cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def test_ensemble_runs_members_and_averages_their_predictions(tmp_path):
    root = str(tmp_path / "d")
    make_dataset(root, n_classes=3, n_folds=2, per_fold=3, seconds=2.0)
    system = tmp_path / "s"
    args = ["--dataset_path", root, "--params_file", params_file(tmp_path), "--folds", "2",
            "--param", f"path.application={system}", "--param", "detection.soundscapes.per_fold=2",
            "--param", "detection.soundscapes.seconds=[6, 8]"]
    first = run("task_esc50.py", args, tmp_path)
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert out.count("Detection, overall") == 3  # each member, then the ensemble, detects
    # the members trained on every training clip: the ensemble's thresholds are tuned on clips it has seen, and
    # it says so (its own default validation_amount describes no model)
    assert "its members have no validation clips in common, and the model has seen these" in out
    assert out.count("(of its training clips: it has no validation clips, and the model has seen these)") == 2
    assert {d.name.split("_")[0] for d in (system / "sed").iterdir() if (d / "detections_fold_2.tsv").exists()} == {
        "small", "other", "both"}
    assert "Member set small" in out and "Member set other" in out and "Testing: ensemble" in out
    assert "log-mel 32 x" in out and "log-mel 40 x" in out  # each member extracts its own features
    # --folds 2 is not the sets' own active folds: each set's results, members' too, are in a folder of that run
    assert not list((system / "evaluator").glob("*/results.yaml"))
    results = [yaml.safe_load(p.read_text()) for p in (system / "evaluator").glob("*/folds_2/results.yaml")]
    assert sorted(r["set_id"] for r in results) == ["both", "other", "small"]

    by_set = {r["set_id"]: r for r in results}
    # an ensemble's training is its members' trainings
    member_seconds = [by_set[m]["training_seconds"][2]["seconds"] for m in ("small", "other")]
    assert min(member_seconds) > 0
    assert by_set["both"]["training_seconds"][2]["seconds"] == pytest.approx(sum(member_seconds), abs=0.2)
    members = by_set["both"]["parameters"]["ensemble"]  # what each member ran with, for reproducing it
    assert list(members) == ["small", "other"] and members["other"]["feature_extractor"]["n_mels"] == 32
    probabilities = {}
    for folder in (system / "evaluator").iterdir():  # evaluator/<set>_<hash of its recognizer folder>
        set_id, h = folder.name.rsplit("_", 1)
        path = system / "recognizer" / h / "res_fold_2.csv"
        labels = path.read_text().splitlines()[0].split(",")[3:]
        _names, truth, probabilities[set_id] = results_io.read_probabilities(str(path), labels)
    np.testing.assert_allclose(probabilities["both"], (probabilities["small"] + probabilities["other"]) / 2, atol=1e-6)
    assert not np.allclose(probabilities["small"], probabilities["other"], atol=1e-3)  # two different models
    assert by_set["both"]["overall"]["accuracy"] == pytest.approx(
        np.mean(np.array(labels)[probabilities["both"].argmax(axis=1)] == np.array(truth)))
    summary = out.split("Ensemble summary")[1].split("Sound event detection")[0].rstrip() + "\n"
    assert [line.split("|")[0].strip() for line in summary.splitlines() if "|" in line][1:] == ["small", "other", "both"]
    assert f"{100 * by_set['both']['overall']['accuracy']:.1f}%" in summary.splitlines()[-2]
    # the ensemble's parameters and DCASE size (float32, 4 bytes a non-zero parameter) are its members' summed
    cells = {line.split("|")[0].strip(): line.split("|") for line in summary.splitlines() if "|" in line}
    params = {s: int(cells[s][3].replace(",", "")) for s in ("small", "other", "both")}
    kb = {s: float(cells[s][4].split()[0]) for s in ("small", "other", "both")}
    assert params["both"] == params["small"] + params["other"]
    assert kb["both"] == pytest.approx(kb["small"] + kb["other"], abs=0.11)
    assert kb["small"] == pytest.approx(4 * params["small"] / 1024, abs=0.11)  # no zero weights in a trained net

    clip = os.path.join(root, "audio", sorted(os.listdir(os.path.join(root, "audio")))[0])
    predicted = run("task_esc50.py", args + ["--predict", clip, "--json"], tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    data = json.loads(predicted.stdout)
    assert data["set"] == "both" and len(data["models"]) == 2
    detected = run("task_esc50.py", args + ["--detect", clip, "--detect_output", str(tmp_path / "found")], tmp_path)
    assert detected.returncode == 0, detected.stderr
    assert "thresholds tuned, the mean of 1 fold(s)" in detected.stdout
    rows = (tmp_path / "found" / "detections.tsv").read_text().splitlines()
    assert rows[0] == "filename\tonset\toffset\tevent_label" and all(r.split("\t")[3] in labels for r in rows[1:])
    assert (tmp_path / "found" / (os.path.splitext(os.path.basename(clip))[0] + ".png")).exists()

    tflite = run("task_esc50_tflite.py", args + ["--param", "tflite.formats=[float32, int8]",
                                                 "--param", "tflite.latency_clips=2"], tmp_path)
    assert tflite.returncode == 0, tflite.stderr
    assert "TFLite comparison: ensemble both" in tflite.stdout
    # DCASE's size limit is the system's: the ensemble's int8 size is its members' summed, as each member's own
    # comparison table states it
    def int8_kb(title):
        table = tflite.stdout.split(title)[1]
        row = next(line for line in table.splitlines() if line.strip().startswith("int8"))
        return float(row.split("|")[2].split()[0])
    members_kb = int8_kb("TFLite comparison: set small") + int8_kb("TFLite comparison: set other")
    assert members_kb > 0 and int8_kb("TFLite comparison: ensemble both") == pytest.approx(members_kb, abs=0.11)
    # the members' models and the ensemble's Keras predictions come from the first run's cache
    assert "Epoch 1/" not in tflite.stdout and "predictions cached" in tflite.stdout.split("Testing: ensemble")[1]
    folders = [d for d in (system / "tflite").iterdir() if (d / "res_fold_2_int8.csv").exists()]
    assert len(folders) == 3  # two members and the ensemble
    int8 = [results_io.read_probabilities(str(d / "res_fold_2_int8.csv"), labels)[2] for d in folders]
    # the ensemble's file is the mean of the other two, whichever folder holds it
    assert any(np.allclose(int8[i], (int8[(i + 1) % 3] + int8[(i + 2) % 3]) / 2, atol=1e-6) for i in range(3))


def test_an_ensemble_tunes_its_detector_on_the_clips_that_every_member_held_out():
    from esc50_baseline.stages.detection import tuning_clips

    class Run:
        def __init__(self, train, validation, members=()):
            self.members = list(members)
            self.clips = [[SimpleNamespace(filename=name) for name in names] for names in (train, validation, [])]

        def split(self, fold):
            return self.clips

    def names(result):
        return [c.filename for c in result[0]], result[1]

    a, b = Run("123", "45"), Run("125", "34")
    everything = Run("12345", "")
    assert names(tuning_clips(a, 1)) == (["4", "5"], False)
    assert names(tuning_clips(everything, 1)) == (list("12345"), True)  # no validation clips: seen ones
    assert names(tuning_clips(Run("", "12", [a, b]), 1)) == (["4"], False)  # not the ensemble's own split
    assert names(tuning_clips(Run("", "12", [a, everything]), 1)) == (["1", "2", "3"], True)
    assert names(tuning_clips(Run("", "", [Run("", "", [b, a]), b]), 1)) == (["4"], False)  # nested
