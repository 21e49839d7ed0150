"""Synthetic ESC-50-layout datasets: each class a distinct tone (or noise band), several folds."""
import csv
import fcntl
import os
import shutil
import sys

import numpy as np
import pytest
import soundfile as sf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def class_signal(target, n, fs, rng):
    """Class k: a tone at 400 * 1.5**k Hz with random phase and level, plus weak noise."""
    t = np.arange(n) / fs
    freq = 400.0 * 1.5 ** target
    y = rng.uniform(0.2, 0.5) * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    return y + 0.01 * rng.standard_normal(n)


def make_dataset(root, n_classes=3, n_folds=2, per_fold=2, seconds=5.0, fs=44100, seed=0, names=None, takes=1):
    """Write root/audio/*.wav and root/meta/esc50.csv; returns the csv rows. Clips of one class and fold
    come `takes` at a time from one source recording (src_file), as ESC-50's takes A, B, C do."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, "audio"), exist_ok=True)
    os.makedirs(os.path.join(root, "meta"), exist_ok=True)
    rows = []
    n = int(round(seconds * fs))
    for fold in range(1, n_folds + 1):
        for target in range(n_classes):
            for i in range(per_fold):
                src, take = f"{fold}{target:02d}{i // takes:02d}", "ABCDEFGH"[i % takes]
                name = f"{fold}-{src}-{take}-{target}.wav"
                y = class_signal(target, n, fs, rng)
                sf.write(os.path.join(root, "audio", name), (y * 32767).astype(np.int16), fs, subtype="PCM_16")
                label = names[target] if names else f"class_{target}"
                rows.append({"filename": name, "fold": fold, "target": target, "category": label,
                             "esc10": str(target % 2 == 0), "src_file": src, "take": take})
    write_meta(root, rows)
    return rows


def write_meta(root, rows, fieldnames=None):
    fieldnames = fieldnames or list(rows[0].keys())
    with open(os.path.join(root, "meta", "esc50.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def built_once(tmp_path_factory, name, build):
    """A folder that `build(path)` fills once per test session, shared by pytest-xdist's workers: the first to
    ask builds it under a lock, the others wait for it. Tests only read it (or copy it)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the workers' base folders are siblings under one session folder
    folder, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            build(str(folder))
            done.touch()
    return str(folder)


@pytest.fixture
def tiny_dataset(tmp_path):
    root = tmp_path / "esc50"
    make_dataset(str(root))
    return str(root)


def shipped_defaults():
    """The `defaults` section of the shipped task_esc50.yaml."""
    import yaml
    with open(os.path.join(ROOT, "task_esc50.yaml")) as f:
        return yaml.safe_load(f)["defaults"]


@pytest.fixture
def defaults():
    return shipped_defaults()
