"""Every bad-input case: a clear sentence naming the file, key or value, or a clip that is read correctly."""
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT, make_dataset
from esc50_baseline.data.audio import AudioError, read_clip

FS, N = 44100, 220500


def tone(seconds, fs, channels=1):
    t = np.arange(int(seconds * fs)) / fs
    y = 0.3 * np.sin(2 * np.pi * 440 * t)
    return np.stack([y] * channels, axis=1) if channels > 1 else y


@pytest.mark.parametrize("name, write, problem", [
    ("empty.wav", lambda p: open(p, "wb").close(), "empty file (0 bytes)"),
    ("cut.wav", lambda p: (sf.write(p, tone(1, FS), FS, subtype="PCM_16"),
                           os.truncate(p, 3000)), "truncated WAV: its header declares 88244 bytes, the file has 3000"),
    ("truncated.wav", lambda p: open(p, "wb").write(b"RIFF\x24\x08\x00\x00WAVEfmt \x10\x00"), "truncated WAV"),
    ("text.wav", lambda p: open(p, "w").write("hello, not a wav"), "not readable as audio"),
    ("movie.wav", lambda p: open(p, "wb").write(b"\x00\x00\x00\x18ftypmp42" + bytes(200)), "not readable as audio"),
    ("nan.wav", lambda p: sf.write(p, np.array([0.1, np.nan, 0.2] * 100), FS, subtype="FLOAT"), "NaN or infinite"),
    ("inf.wav", lambda p: sf.write(p, np.array([0.1, np.inf, 0.2] * 100), FS, subtype="FLOAT"), "NaN or infinite"),
    ("no_samples.wav", lambda p: sf.write(p, np.zeros(0), FS), "no samples"),
])
def test_unusable_audio_is_named(tmp_path, name, write, problem):
    path = str(tmp_path / name)
    write(path)
    with pytest.raises(AudioError) as error:
        read_clip(path, FS, N)
    assert name in str(error.value) and problem in str(error.value)


@pytest.mark.parametrize("fs", [8000, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize("seconds", [1.0, 5.0, 10.0])
def test_any_rate_and_length_becomes_one_5s_clip(tmp_path, fs, seconds):
    path = str(tmp_path / "x.wav")
    sf.write(path, tone(seconds, fs), fs, subtype="PCM_16")
    y = read_clip(path, FS, N)
    assert y.shape == (N,) and y.dtype == np.float32
    filled = int(min(seconds, 5.0) * FS)
    assert np.max(np.abs(y[:filled - 200])) > 0.25  # the tone survives resampling
    assert not np.any(y[filled + 200:])  # zero padding after a short clip


def test_stereo_and_silence(tmp_path):
    stereo = str(tmp_path / "stereo.wav")
    sf.write(stereo, np.stack([tone(5, FS), -tone(5, FS)], axis=1), FS, subtype="FLOAT")
    assert np.allclose(read_clip(stereo, FS, N), 0.0, atol=1e-7)  # the channels are averaged
    silent = str(tmp_path / "silent.wav")
    sf.write(silent, np.zeros(N), FS, subtype="PCM_16")
    from esc50_baseline.features.extraction import FeatureSettings, LogMel
    import yaml
    with open(os.path.join(ROOT, "task_esc50.yaml")) as f:
        settings = FeatureSettings.from_params(yaml.safe_load(f)["defaults"]["feature_extractor"])
    assert np.isfinite(LogMel(settings)(read_clip(silent, FS, N))).all()


def run(args, cwd):
    return subprocess.run([sys.executable, os.path.join(ROOT, "task_esc50.py")] + args, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_skip_mode_reports_and_continues(tmp_path):
    root = str(tmp_path / "d")
    rows = make_dataset(root, n_classes=2, n_folds=2, per_fold=3, seconds=1.0)
    bad = next(r["filename"] for r in rows if r["fold"] == 2)  # a clip of the fold the quick set tests
    with open(os.path.join(root, "audio", bad), "w") as f:
        f.write("not audio")
    result = run(["--dataset_path", root, "--set", "quick", "--param", "learner.epochs=1",
                  "--param", "dataset.on_bad_audio=skip", "--param", f"path.application={tmp_path / 's'}"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"Skipped 1 unreadable clip(s): {bad}" in result.stdout
    predictions = next((tmp_path / "s" / "recognizer").glob("*/res_fold_2.csv")).read_text()
    assert bad not in predictions and len(predictions.splitlines()) == 1 + 5


def test_output_folder_not_writable(tmp_path):
    root = str(tmp_path / "d")
    make_dataset(root, n_classes=2, n_folds=2, per_fold=1, seconds=0.5)
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    result = run(["--dataset_path", root, "--param", f"path.application={blocker / 'system'}"], tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is not writable" in result.stderr and "path.application" in result.stderr


def with_list_chunk(path):
    """Insert a LIST/INFO chunk (as audio editors write) between the fmt and data chunks of a WAV."""
    data = open(path, "rb").read()
    at = data.index(b"data")
    info = b"INFOISFT" + (14).to_bytes(4, "little") + b"some editor\x00\x00\x00"
    chunk = b"LIST" + len(info).to_bytes(4, "little") + info
    body = data[12:at] + chunk + data[at:]
    open(path, "wb").write(b"RIFF" + (len(body) + 4).to_bytes(4, "little") + b"WAVE" + body)


ODD_FILES = [  # name, how it is written, how close it reads back to the 16-bit original
    ("pcm24.wav", lambda p, y: sf.write(p, y, FS, subtype="PCM_24"), 1e-4),
    ("float32.wav", lambda p, y: sf.write(p, y, FS, subtype="FLOAT"), 1e-6),
    ("pcm8.wav", lambda p, y: sf.write(p, y, FS, subtype="PCM_U8"), 1e-2),
    ("clip.flac", lambda p, y: sf.write(p, y, FS, subtype="PCM_16"), 1e-4),
    ("clip.ogg", lambda p, y: sf.write(p, y, FS, format="OGG", subtype="VORBIS"), None),
    ("UPPER.WAV", lambda p, y: sf.write(p, y, FS, subtype="PCM_16"), 1e-4),
    ("list_chunk.wav", lambda p, y: (sf.write(p, y, FS, subtype="PCM_16"), with_list_chunk(p)), 1e-4),
]


@pytest.mark.parametrize("name, write, tolerance", ODD_FILES)
def test_audio_formats_read_as_the_same_clip(tmp_path, name, write, tolerance):
    y = tone(5, FS)
    path = str(tmp_path / name)
    write(path, y)
    read = read_clip(path, FS, N)
    assert read.shape == (N,)
    if tolerance is None:  # lossy: the waveform matches closely, not sample for sample
        assert np.corrcoef(read[1000:-1000], y[1000:-1000])[0, 1] > 0.99
    else:
        assert np.max(np.abs(read - y)) < tolerance


def test_very_short_and_very_long_clips(tmp_path):
    short, long = str(tmp_path / "short.wav"), str(tmp_path / "long.wav")
    sf.write(short, tone(0.05, FS), FS, subtype="FLOAT")
    y = read_clip(short, FS, N)
    np.testing.assert_allclose(y[:2205], tone(0.05, FS), atol=1e-7)
    assert y.shape == (N,) and not y[2205:].any()
    sf.write(long, tone(180, FS), FS, subtype="PCM_16")
    y = read_clip(long, FS, N)
    assert y.shape == (N,) and np.max(np.abs(y - tone(5, FS))) < 1e-4  # its first 5 s
