"""The recording chain's conditions do what they say to a clip, and the out-of-domain stage scores each fold's test
clips through them as --predict reads a file (its "as recorded" row agreeing with the testing stage)."""
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT, make_dataset

from esc50_baseline.data import recording_chain as chain

FS = 44100


def clip(seconds=5.0, seed=0):
    """A clip with content across the band and one loud second (2-3 s)."""
    rng = np.random.default_rng(seed)
    y = 0.05 * rng.standard_normal(int(seconds * FS))
    t = np.arange(FS) / FS
    y[2 * FS:3 * FS] += 0.5 * (np.sin(2 * np.pi * 1000 * t) + np.sin(2 * np.pi * 8000 * t))
    return y.astype(np.float32)


def band_energy(y, fs, low, high):
    spectrum = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(len(y), 1 / fs)
    return spectrum[(f >= low) & (f < high)].sum()


def rms(y):
    return np.sqrt(np.mean(np.square(y)))


def test_each_condition_changes_the_recording_as_named(tmp_path):
    y, rng = clip(), np.random.default_rng(1)
    out, rate, _, _ = chain.phone(y, FS, rng)
    assert rate == 8000 and len(out) == pytest.approx(len(y) * 8000 / FS, abs=2)
    assert band_energy(out, rate, 3800, 4000) < 1e-3 * band_energy(out, rate, 500, 3000)  # nothing over the band
    assert band_energy(out, rate, 0, 150) < 1e-2 * band_energy(out, rate, 500, 3000)
    out, rate, _, _ = chain.low_rate(y, FS, rng)
    assert rate == 16000 and len(out) == pytest.approx(len(y) * 16000 / FS, abs=2)
    samples, rate, fmt, subtype = chain.mp3(y, FS, rng)
    path = str(tmp_path / "x.mp3")
    chain.write(path, samples, rate, fmt, subtype)
    back, back_rate = sf.read(path)
    assert back_rate == 16000 and abs(len(back) - len(samples)) < 0.1 * 16000  # a codec's padding, no more
    assert os.path.getsize(path) * 8 / 5.0 < 40_000  # a low bit rate: under 40 kbit/s
    out, rate, _, _ = chain.room(y, FS, rng)
    assert rate == FS and len(out) == len(y) and rms(out) == pytest.approx(rms(y), rel=1e-4)
    after = slice(3 * FS + FS // 20, 3 * FS + FS // 7)  # 0.05-0.14 s after the loud second: its reverberation
    assert rms(out[after]) > 1.5 * rms(y[after])
    out, _, _, _ = chain.quiet(y, FS, rng)
    assert 20 * np.log10(rms(out) / rms(y)) == pytest.approx(-30, abs=0.01)
    out, _, _, _ = chain.clipped(y, FS, rng)
    assert np.abs(out).max() == pytest.approx(1.0) and np.mean(np.abs(out) >= 1.0) > 0.05
    out, _, _, _ = chain.noisy(y, FS, rng)
    assert 20 * np.log10(rms(y) / rms(out - y)) == pytest.approx(10, abs=0.01)
    assert band_energy(out - y, FS, 50, 500) > 5 * band_energy(out - y, FS, 5000, 5450)  # pink: more power low
    out, _, _, _ = chain.short(y, FS, rng)
    assert len(out) == FS and rms(out) > 5 * rms(y[:FS])  # its loudest second
    out, _, _, _ = chain.long(y, FS, rng)
    assert len(out) == 30 * FS
    start = int(np.argmax(np.convolve(np.abs(out), np.ones(FS), mode="valid"))) - 2 * FS
    floor = out[start:start + len(y)] - y  # the clip is in there whole, over a floor 40 dB under it
    assert 20 * np.log10(rms(floor) / rms(y)) == pytest.approx(-40, abs=0.5)


def test_the_stage_scores_every_condition_and_its_clean_row_is_the_testing_stage(tmp_path):
    data = str(tmp_path / "data")
    make_dataset(data, n_classes=3, n_folds=2, per_fold=3)
    app = str(tmp_path / "app")
    done = subprocess.run([sys.executable, os.path.join(ROOT, "task_esc50.py"), "--set", "quick", "--dataset_path",
                           data, "--param", f"path.application={app}", "--param", "learner.epochs=3",
                           "--param", "flow.out_of_domain=true"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    import pandas as pd
    (table,) = [os.path.join(here, "out_of_domain.csv") for here, _d, files in os.walk(app)
                if "out_of_domain.csv" in files]
    rows = pd.read_csv(table)
    assert list(rows["condition"]) == ["as recorded"] + list(chain.CONDITIONS)
    assert set(rows["clips"]) == {9} and set(rows["fold"]) == {2}
    (predictions,) = [os.path.join(here, "res_fold_2.csv") for here, _d, files in os.walk(app)
                      if "res_fold_2.csv" in files]
    tested = pd.read_csv(predictions, sep=None, engine="python")
    labels = [c for c in tested.columns if c.startswith("class_")]
    right = int((tested[labels].idxmax(axis=1) == tested[tested.columns[1]]).sum())
    assert rows.loc[0, "correct"] == right
    assert "mean of the changed recordings" in done.stdout
    again = subprocess.run(done.args, capture_output=True, text=True, timeout=900)  # read from the cache, not redone
    assert again.returncode == 0, again.stderr
    assert "Out-of-domain check" in again.stdout and "cached" in again.stdout.split("Out-of-domain check")[1]
    assert done.stdout.split("as recorded")[-1] == again.stdout.split("as recorded")[-1]
