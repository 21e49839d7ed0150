"""Kill the command line at several moments, run it again, and get the numbers of an uninterrupted run."""
import os
import signal
import subprocess
import sys
import time

import yaml

from conftest import ROOT, make_dataset

SCRIPT = os.path.join(ROOT, "task_esc50.py")


def command(dataset, app_dir):
    return [sys.executable, SCRIPT, "--dataset_path", dataset, "--set", "quick", "--param", "learner.epochs=8",
            "--param", "general.active_folds=all", "--param", f"path.application={app_dir}"]


def final_numbers(app_dir):
    path = next((app_dir / "evaluator").glob("quick_*/results.yaml"))
    data = yaml.safe_load(path.read_text())
    return data["overall"], data["folds_results"], data["class_wise"]


def test_killed_runs_resume_to_the_same_numbers(tmp_path):
    dataset = str(tmp_path / "d")
    make_dataset(dataset, n_classes=3, n_folds=3, per_fold=3, seconds=2.0)
    straight = subprocess.run(command(dataset, tmp_path / "a"), capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr

    app = tmp_path / "b"
    # 1: killed early (start-up or feature extraction)
    process = subprocess.Popen(command(dataset, app), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2.0)
    process.kill()
    process.wait()
    # 2: killed mid-training, as soon as an epoch's checkpoint exists
    process = subprocess.Popen(command(dataset, app), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list(app.glob("learner/*/checkpoint_fold_*.npz")) and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before a checkpoint was seen"
    process.kill()
    process.wait()
    final = subprocess.run(command(dataset, app), capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    assert "resuming from the checkpoint" in final.stdout
    assert final_numbers(app) == final_numbers(tmp_path / "a")
    leftovers = [p for p in app.rglob("*") if p.name.startswith(".tmp-") or p.name.startswith("checkpoint_")]
    assert not leftovers
