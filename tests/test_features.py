import os
import types

import librosa
import numpy as np
import pytest
import scipy.signal
import soundfile as sf

from conftest import make_dataset
from esc50_baseline.data.audio import AudioError, read_clip
from esc50_baseline.features.extraction import EPS, FeatureCache, FeatureSettings, LogMel, extract_to_cache


def librosa_logmel(y, fs=44100):
    """The DCASE 2021 task 1a extractor written directly with librosa."""
    window = scipy.signal.get_window("hamming", 1764, fftbins=True)
    mel = librosa.feature.melspectrogram(y=y, sr=fs, n_fft=2048, hop_length=882, win_length=1764, window=window,
                                         center=True, power=1.0, n_mels=40, fmin=0, fmax=22050, htk=False)
    return np.log(mel + EPS)


def test_logmel_equals_librosa_and_has_dcase_shape(defaults):
    rng = np.random.default_rng(1)
    y = (0.3 * np.sin(2 * np.pi * 1000 * np.arange(220500) / 44100) + 0.05 * rng.standard_normal(220500))
    y = y.astype(np.float32)
    ours = LogMel(FeatureSettings.from_params(defaults["feature_extractor"]))(y)
    ref = librosa_logmel(y)
    assert ours.shape == (40, 251) == ref.shape
    assert np.max(np.abs(ours - ref)) < 1e-3  # the project's bound: both run the STFT in float32


def test_silent_clip_gives_finite_features(defaults):
    feats = LogMel(FeatureSettings.from_params(defaults["feature_extractor"]))(np.zeros(220500, np.float32))
    assert np.isfinite(feats).all()
    assert np.allclose(feats, np.log(EPS))


def test_read_clip_mixes_stereo_resamples_and_fixes_length(tmp_path):
    t = np.arange(22050) / 22050.0
    left, right = 0.5 * np.sin(2 * np.pi * 440 * t), np.zeros_like(t)
    path = str(tmp_path / "stereo.wav")
    sf.write(path, np.stack([left, right], axis=1), 22050, subtype="FLOAT")
    y = read_clip(path, 44100, 44100 * 5)
    assert y.shape == (220500,)
    assert np.all(y[44100 + 100:] == 0)  # 1 s of audio padded to 5 s
    peak = np.max(np.abs(y[1000:40000]))
    assert abs(peak - 0.25) < 0.01  # mean of the two channels
    assert len(read_clip(path, 44100, 22050)) == 22050  # cut


def test_read_clip_rejects_unreadable_files(tmp_path):
    bad = tmp_path / "text.wav"
    bad.write_text("this is not audio")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    for path in (bad, empty):
        try:
            read_clip(str(path), 44100, 220500)
        except AudioError as e:
            assert str(path) in str(e)
        else:
            raise AssertionError(f"{path} was accepted")


def test_cache_hit_miss_and_invalidation(tmp_path, defaults):
    from esc50_baseline import config
    root = str(tmp_path / "data")
    make_dataset(root, n_classes=2, n_folds=1, per_fold=2, seconds=1.0)
    paths = {f: os.path.join(root, "audio", f) for f in sorted(os.listdir(os.path.join(root, "audio")))}
    settings = FeatureSettings.from_params(defaults["feature_extractor"])
    folder = str(tmp_path / "cache" / config.stage_hash({"feature_extractor": defaults["feature_extractor"]}, "features"))
    assert extract_to_cache(paths, settings, folder, workers=1, show_progress=False) == {}
    cache = FeatureCache(folder)
    assert all(cache.has(name) for name in paths)  # miss -> computed
    stamps = [os.path.getmtime(cache.path(name)) for name in paths]
    first_name = next(iter(paths))
    first = cache.load(first_name)
    extract_to_cache(paths, settings, folder, workers=1, show_progress=False)
    assert [os.path.getmtime(cache.path(name)) for name in paths] == stamps  # hit -> untouched
    np.testing.assert_array_equal(cache.load(first_name), first)
    assert not [f for f in os.listdir(folder) if f.startswith(".tmp-")]  # no temporary files left

    # a changed parameter: the features stage's folder (as a run names it) changes, and a run there
    # computes the new features while the old folder stays as it was
    from esc50_baseline.run import setup
    dataset = types.SimpleNamespace(root=root)
    params = dict(shipped_params(defaults), feature_extractor=dict(defaults["feature_extractor"], n_mels=64))
    new_folder = setup.stage_paths(params, dataset)["features"]
    assert new_folder != setup.stage_paths(shipped_params(defaults), dataset)["features"]
    extract_to_cache(paths, FeatureSettings.from_params(params["feature_extractor"]), new_folder, workers=1,
                     show_progress=False)
    assert FeatureCache(new_folder).load(first_name).shape[0] == 64
    assert [os.path.getmtime(cache.path(name)) for name in paths] == stamps


def shipped_params(defaults, **changes):
    """The shipped defaults as a run resolves them, with `section.key` changes."""
    params = {section: dict(value) if isinstance(value, dict) else value for section, value in defaults.items()}
    params.update(set_id="t", description="")
    for key, value in changes.items():
        section, name = key.split(".", 1)
        params[section] = dict(params[section], **{name: value})
    return params


EVERY_STAGE = {"features", "augmented_features", "normalization", "learner", "recognizer", "tflite"}
TRAINED = {"learner", "recognizer", "tflite"}


@pytest.mark.parametrize("change, stages", [
    ({"feature_extractor.n_mels": 64}, EVERY_STAGE),
    ({"general.seed": 7}, EVERY_STAGE - {"features"}),
    ({"learner.validation_amount": 0.5}, {"normalization"} | TRAINED),
    ({"learner.epochs": 3}, TRAINED),
    ({"testing.time_shifts": [0, 5]}, {"recognizer", "tflite"}),
    ({"tflite.representative_samples": 10}, {"tflite"}),
    ({"general.workers": 7}, set()),
    ({"learner.verbose": 0}, set()),
])
def test_a_setting_invalidates_the_caches_of_the_stages_that_read_it_and_no_others(defaults, tmp_path, change, stages):
    from esc50_baseline.run import setup
    dataset = types.SimpleNamespace(root=str(tmp_path))
    before = setup.stage_paths(shipped_params(defaults), dataset)
    after = setup.stage_paths(shipped_params(defaults, **change), dataset)
    assert {stage for stage in EVERY_STAGE if before[stage] != after[stage]} == stages
    elsewhere = setup.stage_paths(shipped_params(defaults), types.SimpleNamespace(root=str(tmp_path / "copy")))
    assert all(before[stage] != elsewhere[stage] for stage in EVERY_STAGE)  # another dataset copy: all new


def test_parallel_extraction_equals_serial(tmp_path, defaults):
    root = str(tmp_path / "data")
    make_dataset(root, n_classes=4, n_folds=2, per_fold=2, seconds=1.0)
    paths = {f: os.path.join(root, "audio", f) for f in sorted(os.listdir(os.path.join(root, "audio")))}
    settings = FeatureSettings.from_params(defaults["feature_extractor"])
    extract_to_cache(paths, settings, str(tmp_path / "serial"), workers=1, show_progress=False)
    extract_to_cache(paths, settings, str(tmp_path / "parallel"), workers=2, show_progress=False)
    for name in paths:
        np.testing.assert_array_equal(FeatureCache(str(tmp_path / "serial")).load(name),
                                      FeatureCache(str(tmp_path / "parallel")).load(name))


class _WriterThenFullDisk(LogMel):
    """The first clip's worker stays in the middle of a cache write (its temporary file made, the writing not
    done); the other worker's next clip then finds the disk full."""

    def __init__(self, settings, folder):
        super().__init__(settings)
        self.folder = folder

    def __call__(self, y):
        import errno
        import time
        from esc50_baseline import atomic
        try:
            os.close(os.open(os.path.join(self.folder, "writer"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            while not [n for n in os.listdir(self.folder) if n.startswith(atomic.PREFIX)]:
                time.sleep(0.01)
            raise OSError(errno.ENOSPC, "No space left on device")
        open(os.path.join(self.folder, f"{atomic.PREFIX}{os.getpid()}@{atomic.HOST}@x"), "wb").close()
        time.sleep(600)


def test_a_worker_stopped_mid_write_by_another_workers_error_leaves_no_temporary_file(tmp_path, defaults,
                                                                                       monkeypatch):
    from esc50_baseline.features import extraction
    root, folder = str(tmp_path / "data"), str(tmp_path / "cache")
    make_dataset(root, n_classes=4, n_folds=2, per_fold=4, seconds=0.5)  # 32 clips: two workers, a chunk each
    paths = {f: os.path.join(root, "audio", f) for f in sorted(os.listdir(os.path.join(root, "audio")))}
    monkeypatch.setattr(extraction, "LogMel", lambda settings: _WriterThenFullDisk(settings, folder))
    with pytest.raises(OSError, match="No space left"):
        extract_to_cache(paths, FeatureSettings.from_params(defaults["feature_extractor"]), folder, workers=2,
                         show_progress=False)
    assert os.path.exists(os.path.join(folder, "writer"))  # the writer did start
    assert not [n for n in os.listdir(folder) if n.startswith((".tmp-", ".claim-"))]


def test_unreadable_clip_is_reported_not_cached(tmp_path, defaults):
    root = str(tmp_path / "data")
    make_dataset(root, n_classes=2, n_folds=1, per_fold=1, seconds=1.0)
    paths = {f: os.path.join(root, "audio", f) for f in sorted(os.listdir(os.path.join(root, "audio")))}
    bad, good = list(paths)
    with open(paths[bad], "wb") as f:
        f.write(b"RIFF\x00\x00")  # a truncated WAV header
    failures = extract_to_cache(paths, FeatureSettings.from_params(defaults["feature_extractor"]),
                                str(tmp_path / "c"), workers=1, show_progress=False)
    assert list(failures) == [bad] and bad in failures[bad]
    assert not FeatureCache(str(tmp_path / "c")).has(bad)
    assert FeatureCache(str(tmp_path / "c")).has(good)


def test_same_name_in_two_subfolders_gets_two_entries(tmp_path, defaults):
    root = str(tmp_path / "data")
    make_dataset(root, n_classes=2, n_folds=1, per_fold=1, seconds=0.5)
    audio = os.path.join(root, "audio")
    a, b = sorted(os.listdir(audio))
    for folder, name in (("x", a), ("y", b)):
        os.makedirs(os.path.join(audio, folder))
        os.rename(os.path.join(audio, name), os.path.join(audio, folder, "clip.wav"))
    clips = {"x/clip.wav": os.path.join(audio, "x", "clip.wav"), "y/clip.wav": os.path.join(audio, "y", "clip.wav")}
    extract_to_cache(clips, FeatureSettings.from_params(defaults["feature_extractor"]), str(tmp_path / "c"),
                     workers=1, show_progress=False)
    cache = FeatureCache(str(tmp_path / "c"))
    assert not np.array_equal(cache.load("x/clip.wav"), cache.load("y/clip.wav"))
