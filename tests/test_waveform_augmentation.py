"""Waveform augmentation: precomputed copies that are reproducible, leak-free, and used in training."""
import os

import numpy as np
import pytest

from conftest import make_dataset
from esc50_baseline.features import waveform_augmentation as wa
from esc50_baseline.features.extraction import FeatureCache, FeatureSettings, LogMel, extract_to_cache

FS = 16000


def settings(**changes):
    base = dict(copies=2, stretch=(), pitch_semitones=0.0, background_probability=0.0,
                background_snr_db=(10, 10), gain_db=0.0, noise_snr_db=())
    return wa.WaveformSettings(**dict(base, **changes))


def tone(freq, n=FS):
    return (0.3 * np.sin(2 * np.pi * freq * np.arange(n) / FS)).astype(np.float32)


def peak_hz(y):
    spectrum = np.abs(np.fft.rfft(y))
    return np.fft.rfftfreq(len(y), 1 / FS)[spectrum.argmax()]


def test_all_off_is_the_identity():
    y = tone(440)
    np.testing.assert_array_equal(wa.augment(y, None, [0, 1, 1], settings(), FS), y)


def test_pitch_shifts_are_drawn_up_and_down_across_the_whole_range_and_keep_length():
    y = tone(440)
    shifts = []
    for copy in range(1, 25):
        out = wa.augment(y, None, [0, 1, copy], settings(pitch_semitones=2.0), FS)
        assert len(out) == len(y) and out.dtype == np.float32
        shifts.append(12 * np.log2(peak_hz(out) / 440))
    shifts = np.array(shifts)
    # 24 draws of up to 2 semitones either way: within the range, both ways, and beyond one semitone
    assert np.abs(shifts).max() <= 2.1 and shifts.min() < -1 and shifts.max() > 1


def test_settings_are_read_from_the_yaml_section(defaults):
    section = defaults["learner"]["augmentation"]["waveform"]
    s = wa.WaveformSettings.from_params(dict(section, copies=3, stretch=[0.9, 1.1], noise_snr_db=[]))
    assert s == wa.WaveformSettings(copies=3, stretch=(0.9, 1.1), pitch_semitones=float(section["pitch_semitones"]),
                                    background_probability=float(section["background_probability"]),
                                    background_snr_db=tuple(section["background_snr_db"]),
                                    gain_db=float(section["gain_db"]), noise_snr_db=(), vocoder="separate")
    assert wa.WaveformSettings.from_params(dict(section, stretch=None, noise_snr_db=[20, 30])).stretch == ()
    assert wa.WaveformSettings.from_params(dict(section, noise_snr_db=[20, 30])).noise_snr_db == (20, 30)
    assert wa.WaveformSettings.from_params(dict(section, vocoder="joint")).vocoder == "joint"


def onset_s(y, frame=160):
    """The first 10 ms frame whose RMS reaches half the loudest frame's, in seconds."""
    envelope = np.sqrt(np.mean(y[:len(y) // frame * frame].reshape(-1, frame) ** 2, axis=1))
    return np.argmax(envelope >= 0.5 * envelope.max()) * frame / FS


def test_stretch_moves_events_in_time_and_keeps_length_and_pitch():
    t = np.arange(2 * FS) / FS
    y = (0.3 * np.sin(2 * np.pi * 440 * t) * (t >= 1.0)).astype(np.float32)  # silence, then a tone at 1 s
    slower = wa.augment(y, None, [0, 1, 1], settings(stretch=(0.8, 0.8)), FS)
    assert len(slower) == len(y)
    assert abs(onset_s(slower) - 1.0 / 0.8) < 0.03  # rate 0.8: what was at 1 s is now at 1.25 s
    assert abs(peak_hz(slower[int(1.4 * FS):]) - 440) < 5
    faster = wa.augment(y, None, [0, 1, 1], settings(stretch=(1.25, 1.25)), FS)
    assert len(faster) == len(y) and abs(onset_s(faster) - 1.0 / 1.25) < 0.05


def test_one_vocoder_stretches_and_shifts_as_the_two_do_with_the_same_draws():
    t = np.arange(2 * FS) / FS
    y = (0.3 * np.sin(2 * np.pi * 440 * t) * (t >= 1.0)).astype(np.float32)  # silence, then a tone at 1 s
    fixed = dict(stretch=(0.8, 0.8), pitch_semitones=0.0)
    slower_higher = wa._stretch_and_shift(y, 0.8, 2.0, FS)
    assert abs(onset_s(slower_higher) - 1.0 / 0.8) < 0.03
    assert abs(peak_hz(slower_higher[int(1.4 * FS):]) - 440 * 2 ** (2 / 12)) < 5
    np.testing.assert_array_equal(wa.augment(y, None, [0, 1, 1], settings(**fixed, vocoder="joint"), FS),
                                  wa._fit(wa._stretch_and_shift(y, 0.8, 0.0, FS), len(y)))
    drawn = dict(stretch=(0.85, 1.15), pitch_semitones=2.0, gain_db=6.0)
    for copy in range(1, 9):  # the same rate, shift and gain drawn for each copy by either method
        one = wa.augment(y, None, [0, 1, copy], settings(**drawn, vocoder="joint"), FS)
        two = wa.augment(y, None, [0, 1, copy], settings(**drawn), FS)
        assert len(one) == len(y) and one.dtype == np.float32
        assert abs(onset_s(one) - onset_s(two)) <= 0.05  # onsets 0.87-1.18 s; a 2048-point window smears them
        assert abs(peak_hz(one[int(1.4 * FS):]) - peak_hz(two[int(1.4 * FS):])) < 3
        assert not np.array_equal(one, two)
    rest = dict(gain_db=6.0, noise_snr_db=(20, 40), background_probability=1.0)  # the draws after the vocoder
    for copy in range(1, 4):
        np.testing.assert_array_equal(wa.augment(y, tone(3000, len(y)), [0, 1, copy], settings(**rest), FS),
                                      wa.augment(y, tone(3000, len(y)), [0, 1, copy],
                                                 settings(**rest, vocoder="joint"), FS))


def test_noise_is_white_at_the_drawn_level_and_background_at_its_level():
    y, background = tone(440), tone(3000)
    noisy = wa.augment(y, None, [0, 1, 1], settings(noise_snr_db=(30, 30)), FS)
    noise = (noisy - y).astype(float)
    snr = 10 * np.log10(np.mean(y.astype(float) ** 2) / np.mean(noise ** 2))
    assert abs(snr - 30) < 0.5
    assert abs(noise.mean()) < 0.1 * noise.std() and abs(np.corrcoef(noise[:-1], noise[1:])[0, 1]) < 0.05  # white
    mixed = wa.augment(y, background, [0, 1, 1], settings(), FS)
    np.testing.assert_allclose(mixed - y, background * 10 ** (-10 / 20), atol=1e-6)
    silent = np.zeros_like(y)
    np.testing.assert_array_equal(wa.augment(y, silent, [0, 1, 1], settings(), FS), y)  # nothing to mix in


def test_gain_scales_the_whole_clip_by_one_factor_drawn_across_the_range():
    y = tone(440)
    gains = []
    for copy in range(1, 401):
        out = wa.augment(y, None, [0, 1, copy], settings(gain_db=6.0), FS)
        factor = out[100] / y[100]
        np.testing.assert_allclose(out, y * factor, rtol=1e-5, atol=1e-7)
        gains.append(20 * np.log10(factor))
    gains = np.array(gains)
    assert np.abs(gains).max() <= 6.0 and gains.min() < -5.8 and gains.max() > 5.8
    assert abs(np.mean(gains > 0) - 0.5) < 0.1  # up as often as down


def test_same_seed_same_copy_other_copy_differs():
    y = tone(440)
    s = settings(pitch_semitones=2.0, noise_snr_db=(20, 40))
    np.testing.assert_array_equal(wa.augment(y, None, [3, 7, 1], s, FS), wa.augment(y, None, [3, 7, 1], s, FS))
    assert not np.array_equal(wa.augment(y, None, [3, 7, 1], s, FS), wa.augment(y, None, [3, 7, 2], s, FS))


def test_backgrounds_come_from_the_clips_own_fold_never_itself():
    clips = [(f"{fold}-{i}.wav", f"/a/{fold}-{i}.wav", fold) for fold in (1, 2, 3) for i in range(4)]
    mates = {fold: [p for _n, p, f in clips if f == fold] for fold in (1, 2, 3)}
    jobs = wa.jobs(clips, mates, settings(copies=3, background_probability=1.0), seed=0)
    assert len(jobs) == 3 * len(clips)
    for filename, path, fold in clips:
        for copy in (1, 2, 3):
            job_path, background, _seed = jobs[wa.copy_name(filename, copy)]
            assert job_path == path and background in mates[fold] and background != path
    none = wa.jobs(clips, mates, settings(copies=1, background_probability=0.0), seed=0)
    assert all(background is None for _p, background, _s in none.values())
    half = settings(copies=3, background_probability=0.5)
    drawn = wa.jobs(clips, mates, half, seed=0)
    assert drawn == wa.jobs(clips, mates, half, seed=0)  # reproducible
    assert 0.3 < np.mean([background is not None for _p, background, _s in drawn.values()]) < 0.7


def two_folds_of_clips(tmp_path, defaults, per_fold):
    """(feature settings, [(filename, audio path, fold)], {fold: its audio paths}) of a small 1 s dataset."""
    root = str(tmp_path / "data")
    rows = make_dataset(root, n_classes=2, n_folds=2, per_fold=per_fold, seconds=1.0, fs=FS)
    feature_settings = FeatureSettings.from_params(dict(defaults["feature_extractor"], fs=FS, clip_seconds=1.0,
                                                        fmax=FS / 2))
    clips = [(r["filename"], os.path.join(root, "audio", r["filename"]), r["fold"]) for r in rows]
    return feature_settings, clips, {f: [p for _n, p, fold in clips if fold == f] for f in (1, 2)}


def test_a_cache_of_fewer_copies_is_extended_not_remade_and_its_copies_are_those_a_larger_count_makes(tmp_path,
                                                                                                      defaults):
    """Copy k depends on (seed, clip, k) alone, so caches are shared across copy counts (config.COUNTS)."""
    feature_settings, clips, mates = two_folds_of_clips(tmp_path, defaults, per_fold=1)
    two, three = (settings(copies=n, gain_db=6.0, noise_snr_db=(10, 20), background_probability=0.5) for n in (2, 3))
    jobs_two, jobs_three = wa.jobs(clips, mates, two, seed=0), wa.jobs(clips, mates, three, seed=0)
    assert {name: jobs_three[name] for name in jobs_two} == jobs_two and len(jobs_three) == 3 * len(clips)
    shared, fresh = str(tmp_path / "shared"), str(tmp_path / "fresh")
    assert extract_to_cache(jobs_two, feature_settings, shared, workers=1, augmentation=two, show_progress=False) == {}
    cache = FeatureCache(shared)
    made = {name: os.stat(cache.path(name)).st_mtime_ns for name in jobs_two}
    assert extract_to_cache(jobs_three, feature_settings, shared, workers=1, augmentation=three,
                            show_progress=False) == {}
    assert {name: os.stat(cache.path(name)).st_mtime_ns for name in jobs_two} == made  # read, not made again
    assert extract_to_cache(jobs_three, feature_settings, fresh, workers=1, augmentation=three,
                            show_progress=False) == {}
    for name in jobs_three:
        np.testing.assert_array_equal(cache.load(name), FeatureCache(fresh).load(name))


def test_copies_are_extracted_to_the_cache_in_parallel(tmp_path, defaults):
    feature_settings, clips, mates = two_folds_of_clips(tmp_path, defaults, per_fold=2)
    s = settings(copies=2, pitch_semitones=1.0, background_probability=0.5)
    jobs = wa.jobs(clips, mates, s, seed=0)
    assert extract_to_cache(jobs, feature_settings, str(tmp_path / "c1"), workers=2, augmentation=s,
                            show_progress=False) == {}
    assert extract_to_cache(jobs, feature_settings, str(tmp_path / "c2"), workers=1, augmentation=s,
                            show_progress=False) == {}
    first, second = FeatureCache(str(tmp_path / "c1")), FeatureCache(str(tmp_path / "c2"))
    for name in jobs:
        np.testing.assert_array_equal(first.load(name), second.load(name))
    # a copy is the log-mel of the augmented waveform
    from esc50_baseline.data.audio import read_clip
    name = wa.copy_name(clips[0][0], 1)
    path, background, seed = jobs[name]
    y = read_clip(path, FS, FS)
    bg = read_clip(background, FS, FS) if background else None
    expected = LogMel(feature_settings)(wa.augment(y, bg, seed, s, FS))
    np.testing.assert_array_equal(first.load(name), expected)


def test_a_copy_recorded_otherwise_goes_through_another_device_and_channel():
    """recording_chain: 1.0 sends every copy through a telephone band, 16 kHz, MP3 at 16 kHz or a room (one drawn),
    after the draws of the other augmentations, which stay as they were: so with it off, nothing changes."""
    fs = 44100
    y = (0.1 * np.random.default_rng(0).standard_normal(2 * fs)).astype(np.float32)  # white: every band

    def share(x, low, high):
        spectrum = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(len(x), 1 / fs)
        return spectrum[(f >= low) & (f < high)].sum()
    kinds = set()
    for copy in range(1, 13):
        plain = wa.augment(y, None, [0, 1, copy], settings(gain_db=6.0), fs)
        chained = wa.augment(y, None, [0, 1, copy], settings(gain_db=6.0, recording_chain=1.0), fs)
        assert len(chained) == len(y) and chained.dtype == np.float32 and not np.allclose(chained, plain)
        if share(chained, 9000, 20000) < 1e-3 * share(plain, 9000, 20000):  # a telephone, 16 kHz or MP3 at 16 kHz
            kinds.add("band-limited")
            # the gain drawn before is the plain copy's: the band all of them keep is as loud
            assert 10 * np.log10(share(chained, 500, 3000) / share(plain, 500, 3000)) == pytest.approx(0, abs=1.5)
        else:  # a room: all bands, its level kept
            kinds.add("room")
            assert np.sqrt(np.mean(chained ** 2)) == pytest.approx(np.sqrt(np.mean(plain ** 2)), rel=1e-3)
    assert kinds == {"band-limited", "room"}
