"""Folds run side by side in several processes on one path.application: shared caches written once, no
half-read file, another host's writes in progress left alone; then a plain run evaluates every fold."""
import glob
import os
import re
import subprocess
import sys

import yaml

from conftest import ROOT, make_dataset
from esc50_baseline import atomic

SCRIPT = os.path.join(ROOT, "task_esc50.py")


def test_stale_temporaries_of_this_host_only_are_removed(tmp_path):
    dead = 4_000_000  # above Linux's largest process id: no such process
    mine_dead = tmp_path / f".tmp-{dead}@{atomic.HOST}@abc.npy"
    older_dead = tmp_path / f".tmp-{dead}-abc.npy"              # named before hosts were part of the name
    mine_alive = tmp_path / f".tmp-{os.getpid()}@{atomic.HOST}@abc.npy"
    other_host = tmp_path / f".tmp-{dead}@another-host.lab@abc.npy"  # its pid says nothing here
    for path in (mine_dead, older_dead, mine_alive, other_host):
        path.write_text("x")
    assert atomic.remove_stale_temporaries(str(tmp_path)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine_alive.name, other_host.name])
    with atomic.atomic_path(str(tmp_path / "out.txt")) as tmp:
        assert os.path.basename(tmp).startswith(f".tmp-{os.getpid()}@{atomic.HOST}@")


def command(dataset, app, *extra):
    return [sys.executable, SCRIPT, "--dataset_path", dataset, "--set", "quick", "--param", "learner.epochs=3",
            "--param", "learner.augmentation.waveform.copies=2", "--param", "general.workers=1",
            "--param", f"path.application={app}", *extra]


def computed_here(output, kind):
    """How many entries a run computed itself: as it says when another process made some meanwhile, else
    its progress total."""
    shared = re.search(rf"  {kind}: (\d+) computed here, \d+ made meanwhile", output)
    totals = re.findall(rf"{kind} \[[#.]+\] \d+/(\d+)", output)
    return int(shared.group(1)) if shared else int(totals[-1]) if totals else 0


def test_two_processes_share_one_cache_then_a_plain_run_evaluates_all_folds(tmp_path):
    dataset = str(tmp_path / "d")
    make_dataset(dataset, n_classes=3, n_folds=2, per_fold=6, seconds=1.0)
    reference = tmp_path / "one_process"
    straight = subprocess.run(command(dataset, reference, "--param", "general.active_folds=all"),
                              capture_output=True, text=True, timeout=900)
    assert straight.returncode == 0, straight.stderr

    app = tmp_path / "shared"
    runs = [subprocess.Popen(command(dataset, app, "--folds", fold), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True) for fold in ("1", "2")]
    outputs = [run.communicate(timeout=900)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    clips, copies = 36, 72  # every clip; two copies of every clip (each trains in the other fold)
    assert len(glob.glob(f"{app}/features/*/*.npy")) == clips
    assert len(glob.glob(f"{app}/features_augmented/*/*.npy")) == copies
    # each entry computed once, but for a race's few
    assert sum(computed_here(out, "features") for out in outputs) <= clips + 4
    assert sum(computed_here(out, "augmented") for out in outputs) <= copies + 4
    assert not glob.glob(f"{app}/**/.tmp-*", recursive=True)

    final = subprocess.run(command(dataset, app, "--param", "general.active_folds=all"),
                           capture_output=True, text=True, timeout=900)
    assert final.returncode == 0, final.stderr
    assert final.stdout.count("trained model cached") == 2 and "Epoch 1/" not in final.stdout
    assert "2-fold cross-validation: accuracy" in final.stdout
    results = lambda folder: yaml.safe_load(open(glob.glob(f"{folder}/evaluator/quick_*/results.yaml")[0]))
    for key in ("overall", "folds_results", "class_wise", "cross_validation"):
        assert results(app)[key] == results(reference)[key]
