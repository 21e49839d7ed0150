"""Folds run side by side in several processes on one path.application: shared caches written once, no
half-read file, another host's writes in progress left alone; then a plain run evaluates every fold."""
import glob
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
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
    package_dead = tmp_path / f".tmp-{dead}@{atomic.HOST}@pkg"  # a folder being filled (atomic_dir)
    package_dead.mkdir()
    (package_dead / "model_data.cc").write_text("x")
    assert atomic.remove_stale_temporaries(str(tmp_path)) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine_alive.name, other_host.name])
    with atomic.atomic_path(str(tmp_path / "out.txt")) as tmp:
        assert os.path.basename(tmp).startswith(f".tmp-{os.getpid()}@{atomic.HOST}@")
    with atomic.atomic_dir(str(tmp_path / "package")) as tmp:
        assert os.path.basename(tmp).startswith(f".tmp-{os.getpid()}@{atomic.HOST}@")
        (tmp_path / "package").mkdir()  # an older package: replaced whole
        open(os.path.join(tmp, "new.h"), "w").close()
    assert os.listdir(tmp_path / "package") == ["new.h"]


def test_a_full_disk_is_recognised_however_deeply_wrapped():
    import errno
    assert atomic.disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert atomic.disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    try:  # a library that wraps the OSError in its own error
        try:
            raise OSError(errno.ENOSPC, "write failed")
        except OSError as inner:
            raise RuntimeError("could not save the model") from inner
    except RuntimeError as outer:
        assert atomic.disk_full(outer)
    assert atomic.disk_full(ValueError("HDF5: No space left on device"))  # only the text says so
    assert not atomic.disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not atomic.disk_full(ValueError("bad value"))
    message = str(atomic.no_space("/data/system"))
    assert "/data/system" in message and "path.application" in message and "finished work is kept" in message


def test_a_claim_holds_while_its_maker_lives(tmp_path):
    target = str(tmp_path / "sub" / "clip.wav.npy")
    assert atomic.claim(target) and not atomic.claim(target)  # the second claimant is refused
    assert atomic.claim_stands(target)  # this process is alive
    assert atomic.remove_stale_temporaries(str(tmp_path)) == 0  # a living maker's claim stays
    atomic.release(target)
    assert not atomic.claim_stands(target) and atomic.claim(target)
    atomic.release(target)
    claim = tmp_path / "sub" / ".claim-clip.wav.npy"
    claim.write_text(f"4000000@{atomic.HOST}")  # its maker died on this host
    assert not atomic.claim_stands(target)
    claim.write_text("4000000@another-host.lab")  # another host's pid says nothing here: its age does
    assert atomic.claim_stands(target)
    old = time.time() - atomic.CLAIM_STALE_S - 5
    os.utime(claim, (old, old))
    assert not atomic.claim_stands(target)
    assert atomic.remove_stale_temporaries(str(tmp_path)) == 1 and not claim.exists()


def test_an_entry_another_process_is_making_is_waited_for_not_made_again(tmp_path, defaults):
    """Clip a is claimed by a living process that saves a marker for it a moment later: the run waits and
    keeps the marker. Clip b's claim is a dead process's: the run makes b itself and clears the claim."""
    from esc50_baseline.features.extraction import FeatureCache, FeatureSettings, extract_to_cache
    root = str(tmp_path / "d")
    make_dataset(root, n_classes=2, n_folds=1, per_fold=1, seconds=1.0)
    names = sorted(os.listdir(os.path.join(root, "audio")))
    cache = FeatureCache(str(tmp_path / "cache"))
    maker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        for name, pid in zip(names, (maker.pid, 4_000_000)):
            os.makedirs(cache.folder, exist_ok=True)
            with open(atomic.claim_path(cache.path(name)), "w") as f:
                f.write(f"{pid}@{atomic.HOST}")
        marker, saved = np.full((3, 3), 7.0, np.float32), threading.Event()

        def other_process_finishes():
            time.sleep(1.0)
            cache.save(names[0], marker)
            atomic.release(cache.path(names[0]))
            saved.set()

        finisher = threading.Thread(target=other_process_finishes)
        finisher.start()
        clips = {n: os.path.join(root, "audio", n) for n in names}
        assert extract_to_cache(clips, FeatureSettings.from_params(defaults["feature_extractor"]), cache.folder,
                                workers=1, show_progress=False) == {}
        assert saved.is_set()  # the run returned only after the other process had saved clip a
        finisher.join()
    finally:
        maker.kill()
    np.testing.assert_array_equal(cache.load(names[0]), marker)  # waited for, not made again
    assert cache.load(names[1]).shape[0] == defaults["feature_extractor"]["n_mels"]  # made here
    assert not glob.glob(f"{cache.folder}/**/.claim-*", recursive=True)


def command(dataset, app, *extra):
    """Two waveform copies of each training clip, by the cheap transforms only (stretch and pitch would
    take most of the test's time and share the cache no differently)."""
    return [sys.executable, SCRIPT, "--dataset_path", dataset, "--set", "quick", "--param", "learner.epochs=3",
            "--param", "learner.augmentation.waveform.copies=2", "--param", "learner.augmentation.waveform.stretch=[]",
            "--param", "learner.augmentation.waveform.pitch_semitones=0", "--param", "general.workers=1",
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
    # each entry computed once, by one of the two (a claimed entry is left to its maker)
    assert sum(computed_here(out, "features") for out in outputs) == clips
    assert sum(computed_here(out, "augmented") for out in outputs) == copies
    assert not glob.glob(f"{app}/**/.tmp-*", recursive=True) and not glob.glob(f"{app}/**/.claim-*", recursive=True)

    final = subprocess.run(command(dataset, app, "--param", "general.active_folds=all"),
                           capture_output=True, text=True, timeout=900)
    assert final.returncode == 0, final.stderr
    assert final.stdout.count("trained model cached") == 2 and "Epoch 1/" not in final.stdout
    assert "2-fold cross-validation: accuracy" in final.stdout
    results = lambda folder: yaml.safe_load(open(glob.glob(f"{folder}/evaluator/quick_*/results.yaml")[0]))
    for key in ("overall", "folds_results", "class_wise", "cross_validation"):
        assert results(app)[key] == results(reference)[key]
    # the fold-1 run (not the set's own active fold) kept its results apart; the fold-2 run's (the quick set's
    # own "last" fold) were replaced by those of both folds
    (subset,) = glob.glob(f"{app}/evaluator/quick_*/folds_1/results.yaml")
    assert yaml.safe_load(open(subset))["folds"] == [1] and results(app)["folds"] == [1, 2]


def test_a_fold_another_run_is_training_is_waited_for_then_read_from_the_cache(tmp_path):
    """The test holds the fold's training lock, as a run training that fold would, and starts a run that needs
    the fold: it says it waits, and once a model is in place and the lock released it tests that model
    instead of training one (two commands on one fold, or a student whose teacher another run trains)."""
    dataset = str(tmp_path / "d")
    make_dataset(dataset, n_classes=3, n_folds=2, per_fold=4, seconds=1.0)
    trained_elsewhere = tmp_path / "elsewhere"
    first = subprocess.run(command(dataset, trained_elsewhere, "--folds", "2"), capture_output=True, text=True,
                           timeout=900)
    assert first.returncode == 0, first.stderr
    learner = os.path.relpath(glob.glob(f"{trained_elsewhere}/learner/*/model_fold_2.keras")[0], trained_elsewhere)

    app = tmp_path / "shared"
    with atomic.exclusive(str(app / os.path.dirname(learner) / ".training_fold_2.lock")):
        run = subprocess.Popen(command(dataset, app, "--folds", "2"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        before = []
        for line in run.stdout:  # up to the waiting line: the run holds there while the lock is held
            before.append(line)
            if "Fold 2: another run is training it; waiting for its model" in line:
                break
        assert before and "waiting for its model" in before[-1], "".join(before)
        shutil.copy(trained_elsewhere / learner, app / learner)  # the other run's model, newer than the features
    after = run.communicate(timeout=900)[0]
    assert run.returncode == 0, "".join(before) + after
    assert f"Fold 2: trained model cached ({app / learner})" in after and "Epoch 1/" not in after
    predictions = lambda folder: open(glob.glob(f"{folder}/recognizer/*/res_fold_2.csv")[0]).read()
    assert predictions(app) == predictions(trained_elsewhere)
