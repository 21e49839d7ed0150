"""Sound event detection: the soundscape generator's annotations match what it placed, post-processing turns
known score curves into known events, the scores of a perfect and of an empty detector, and score curves from
windows."""
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import yaml

from conftest import ROOT, make_dataset
from esc50_baseline.detection import curves, denoise, events, scoring, segments, soundscapes

FS = 1000
SETTINGS = soundscapes.SoundscapeSettings(per_fold=4, seconds=(20, 30), event_snr_db=(15, 30), gap_seconds=(0.5, 2.0),
                                          overlap_share=0.5, active_db=30)


def padded_tone(start, length, total=5.0, freq=50.0):
    """A clip of `total` seconds: silence, then a tone of `length` seconds from `start`, then silence."""
    y = np.zeros(int(total * FS))
    t = np.arange(int(length * FS)) / FS
    y[int(start * FS):int(start * FS) + len(t)] = 0.5 * np.sin(2 * np.pi * freq * t)
    return y


def test_the_active_region_is_where_the_clip_sounds():
    assert soundscapes.active_region(padded_tone(1.2, 2.0), FS, 30) == (1200, 3200)
    assert soundscapes.active_region(np.zeros(5 * FS), FS, 30) == (0, 5 * FS)  # silence: all of it


@pytest.mark.parametrize("overlap", [False, True])
def test_annotations_match_the_samples_placed(overlap):
    rng = np.random.default_rng(0)
    clips = [(soundscapes._cut(padded_tone(0.5 + k / 10, 1.0 + k / 4, freq=40 + 10 * k), FS, SETTINGS), f"c{k}")
             for k in range(6)]
    mix, annotations = soundscapes.compose(iter(clips), np.zeros(5 * FS), FS, 25.0, overlap, SETTINGS, rng)
    assert len(mix) == 25 * FS and len(annotations) >= 4
    sounding = np.zeros(len(mix), bool)
    lengths = {label: len(samples) / FS for samples, label in clips}
    for onset, offset, label in annotations:
        assert offset - onset == pytest.approx(lengths[label])
        region = mix[int(round(onset * FS)):int(round(offset * FS))]
        if not overlap:  # each event as recorded: its samples, unscaled
            np.testing.assert_allclose(region, dict((lab, s) for s, lab in clips)[label], atol=1e-6)
        sounding[int(round(onset * FS)):int(round(offset * FS))] = True
    assert not mix[~sounding].any()  # silent background: nothing sounds outside the annotated events
    starts = [a[0] for a in annotations]
    if not overlap:
        assert all(a[1] <= b[0] for a, b in zip(annotations, annotations[1:]))
    assert starts == sorted(starts)


def test_the_background_is_everywhere_15_to_30_db_under_the_events():
    rng = np.random.default_rng(1)
    noise = np.random.default_rng(2).normal(0, 0.3, 3 * FS)
    mix, annotations = soundscapes.compose(iter([]), noise, FS, 20.0, False, SETTINGS, rng)
    assert annotations == []
    assert np.sqrt(np.mean(mix.astype(np.float64) ** 2)) == pytest.approx(soundscapes.BACKGROUND_RMS, rel=1e-3)
    tone = soundscapes._cut(padded_tone(0.0, 2.0), FS, SETTINGS)
    for seed in range(5):
        mix, annotations = soundscapes.compose(iter([(tone, "t")] * 3), noise, FS, 20.0, False, SETTINGS,
                                               np.random.default_rng(seed))
        quiet = np.ones(len(mix), bool)
        for onset, offset, _label in annotations:
            quiet[int(round(onset * FS)):int(round(offset * FS))] = False
        ratio = 20 * np.log10(np.sqrt(np.mean(tone ** 2)) / np.sqrt(np.mean(mix[quiet].astype(np.float64) ** 2)))
        assert 15 - 0.1 <= ratio <= 30 + 0.1


def test_soundscapes_are_written_with_their_annotations_and_kept(tmp_path):
    clips = {f"clip{k}.wav": padded_tone(0.3 * k, 1.0 + 0.2 * k, freq=30 + 7 * k) for k in range(8)}
    read = lambda name: clips[name]  # noqa: E731
    folder = str(tmp_path / "fold_1" / "test")
    pool = [(name, f"label{k % 3}") for k, name in enumerate(clips)]
    names = soundscapes.make(folder, pool, read, FS, SETTINGS, seed=[0, 1])
    assert len(names) == 4 and sorted(os.listdir(folder)) == sorted(
        names + [n.replace(".wav", ".tsv") for n in names] + ["soundscapes.tsv"])
    durations = soundscapes.read_index(folder)
    for name in names:
        audio, fs = sf.read(os.path.join(folder, name))
        assert fs == FS and len(audio) / FS == pytest.approx(durations[name], abs=1e-3)
        assert 20 <= durations[name] <= 30
        for onset, offset, label in soundscapes.read_annotations(os.path.join(folder, name.replace(".wav", ".tsv"))):
            assert label in {"label0", "label1", "label2"} and 0 <= onset < offset <= durations[name]
            inside = audio[int(onset * FS):int(offset * FS)]
            assert np.abs(inside).max() > 10 * soundscapes.BACKGROUND_RMS
    before = {n: os.path.getmtime(os.path.join(folder, n)) for n in names}
    assert soundscapes.make(folder, pool, read, FS, SETTINGS, seed=[0, 1]) == names  # cached: not written again
    assert before == {n: os.path.getmtime(os.path.join(folder, n)) for n in names}
    again = str(tmp_path / "again")
    soundscapes.make(again, pool, read, FS, SETTINGS, seed=[0, 1])  # seeded: the same soundscapes
    for name in names:
        assert open(os.path.join(folder, name), "rb").read() == open(os.path.join(again, name), "rb").read()


def curve_of(spans, classes=2, hop=0.1, seconds=6.0):
    """A score curve that is 0.9 over the given (class, start s, end s) spans and 0.1 elsewhere."""
    curve = np.full((int(round(seconds / hop)), classes), 0.1)
    for c, start, end in spans:
        curve[int(round(start / hop)):int(round(end / hop)), c] = 0.9
    return curve


def test_post_processing_turns_a_known_curve_into_known_events():
    labels = ["dog", "rain"]
    curve = curve_of([(0, 1.0, 2.0), (0, 2.2, 3.0),   # a 0.2 s dip inside one dog event
                      (0, 4.0, 4.1),                   # a 0.1 s blip
                      (1, 3.5, 3.8), (1, 5.0, 6.0)])   # a short rain event, and one to the end
    assert events.detect(curve, 0.1, labels, events.PostProcessing(0.5), duration=5.95) == [
        (1.0, 2.0, "dog"), (2.2, 3.0, "dog"), (3.5, 3.8, "rain"), (4.0, 4.1, "dog"), (5.0, 5.95, "rain")]
    full = events.PostProcessing(0.5, median_filter_seconds=0.3, max_gap_seconds=0.3, min_event_seconds=0.5)
    assert events.detect(curve, 0.1, labels, full, duration=6.0) == [(1.0, 3.0, "dog"), (5.0, 6.0, "rain")]
    per_class = events.PostProcessing([0.5, 0.95])  # rain's threshold above every score: no rain
    assert [e[2] for e in events.detect(curve, 0.1, labels, per_class)] == ["dog", "dog", "dog"]


def test_the_median_filter_keeps_majorities():
    active = np.array([0, 1, 0, 0, 1, 1, 1, 0, 1, 1], bool)[:, None]
    np.testing.assert_array_equal(events.median_filtered(active, 3)[:, 0],
                                  [0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    assert events.runs(np.array([1, 1, 0, 1, 0, 0, 1], bool)) == [(0, 2), (3, 4), (6, 7)]


REFERENCES = {"a.wav": [(1.0, 3.0, "dog"), (5.0, 6.5, "rain")], "b.wav": [(0.5, 2.0, "rain")], "c.wav": []}
DURATIONS = {"a.wav": 10.0, "b.wav": 8.0, "c.wav": 6.0}


def test_a_perfect_and_an_empty_detector():
    labels = ["dog", "rain"]
    segment, event = scoring.sed_eval_metrics(REFERENCES, REFERENCES, DURATIONS, labels)
    perfect = scoring.summary(segment, event)
    assert perfect == {"segment_f1": 1.0, "segment_error_rate": 0.0, "event_f1": 1.0, "event_error_rate": 0.0,
                       "event_f1_macro": 1.0}
    segment, event = scoring.sed_eval_metrics(REFERENCES, {}, DURATIONS, labels)
    empty = scoring.summary(segment, event)
    assert empty["segment_f1"] == 0.0 and empty["event_f1"] == 0.0
    assert empty["segment_error_rate"] == 1.0 and empty["event_error_rate"] == 1.0  # every reference deleted
    assert scoring.class_wise(segment, event, labels)["rain"]["references"] == 2
    spurious = {"c.wav": [(1.0, 2.0, "cow")]}  # a class no reference has: no error rate, not a huge one
    segment, event = scoring.sed_eval_metrics(REFERENCES, spurious, DURATIONS, labels + ["cow"])
    assert scoring.class_wise(segment, event, labels + ["cow"])["cow"]["event_error_rate"] is None
    assert scoring.psds(REFERENCES, [REFERENCES], DURATIONS) == pytest.approx(1.0)
    assert scoring.psds(REFERENCES, [{}], DURATIONS) == 0.0
    late = {n: [(on + 0.5, off + 0.5, label) for on, off, label in e] for n, e in REFERENCES.items()}
    segment, event = scoring.sed_eval_metrics(REFERENCES, late, DURATIONS, labels)
    assert scoring.summary(segment, event)["event_f1"] == 0.0  # half a second late: outside the 200 ms collar
    assert 0 < scoring.summary(segment, event)["segment_f1"] < 1


def test_windows_with_a_hop_and_the_mean_of_the_windows_over_each_hop(tmp_path):
    from esc50_baseline.data.audio import Windows
    path = str(tmp_path / "ramp.wav")
    sf.write(path, (np.arange(1050) / 2000).astype(np.float32), FS, subtype="FLOAT")
    windows = list(Windows(path, FS, 400, hop=100))
    assert len(windows) == 11 and all(len(w) == 400 for w in windows)  # one every 100 samples while it lasts
    np.testing.assert_allclose(windows[3][:5], np.arange(300, 305) / 2000)
    assert not windows[-1][50:].any()  # the last starts at 1000: 50 samples, then zeros
    scores = np.arange(12, dtype=float).reshape(6, 2)
    np.testing.assert_allclose(curves.covered_mean(scores, 2), [[0, 1], [1, 2], [3, 4], [5, 6], [7, 8], [9, 10]])


def test_a_curve_marks_where_a_class_sounds(tmp_path):
    """A scorer that says 'tone' for windows with energy: the curve rises over the tone, give or take a window."""
    path = str(tmp_path / "scene.wav")
    y = np.zeros(10 * FS)
    y[4 * FS:6 * FS] = 0.5
    sf.write(path, y.astype(np.float32), FS, subtype="FLOAT")
    scorer = lambda clips: np.stack([(np.abs(clips).max(axis=1) > 0).astype(float),  # noqa: E731
                                     (np.abs(clips).max(axis=1) == 0).astype(float)], axis=1)
    curve, duration = curves.score_curve(path, FS, 5 * FS, scorer, window_seconds=1.0, hop_seconds=0.5)
    assert duration == 10.0 and curve.shape == (20, 2)
    assert (curve[8:12, 0] == 1).all() and (curve[:7, 0] == 0).all() and (curve[14:, 0] == 0).all()
    found = events.detect(curve, 0.5, ["tone", "quiet"], events.PostProcessing([0.99, 2.0]), duration)
    assert found == [(4.0, 6.0, "tone")]


def test_overlapping_events_of_one_class_are_annotated_as_one():
    assert soundscapes.merged([(5.0, 7.0, "dog"), (1.0, 3.0, "dog"), (2.5, 4.0, "dog"), (2.0, 6.0, "rain")]) == [
        (1.0, 4.0, "dog"), (2.0, 6.0, "rain"), (5.0, 7.0, "dog")]


def test_thresholds_are_tuned_per_class_where_the_validation_soundscapes_allow():
    from esc50_baseline.stages import detection as stage
    hop, labels = 0.1, ["a", "b"]
    refs = {f"s{k}.wav": [(1.0, 2.0, "a"), (3.0, 4.0, "a"), (5.0, 5.5, "b")] for k in range(2)}
    durations = {name: 6.0 for name in refs}
    curves_ = {}
    for name in refs:
        curve = np.full((60, 2), 0.2)
        curve[10:20, 0] = curve[30:40, 0] = 0.42  # class a: faint but above its floor
        curve[50:55, 1] = 0.9
        curves_[name] = curve
    detection = {"thresholds": "tuned", "per_class_thresholds": True, "median_filter_seconds": 0.0,
                 "max_gap_seconds": 0.0, "min_event_seconds": 0.0}
    tuned = stage.tuned_thresholds(curves_, refs, durations, labels, hop, detection)
    assert 0.2 < tuned[0] <= 0.42  # four events of a: its own threshold, between its floor and its events
    assert tuned[1] == tuned[0]  # two events of b: too few to tune alone, so the overall best
    assert (stage.tuned_thresholds(curves_, refs, durations, labels, hop, dict(detection, thresholds=0.7)) == 0.7).all()


def test_a_fold_without_validation_clips_tunes_out_of_fold_when_other_folds_run():
    from types import SimpleNamespace as NS
    from esc50_baseline.stages import detection as stage

    def run(validation, folds):
        clips = lambda names: [NS(filename=n) for n in names]  # noqa: E731
        return NS(members=[], folds=folds, split=lambda fold: (clips("abc"), clips(validation), clips("z")))
    assert stage.tuning_plan(run("", [1, 2, 3]), 2) == (stage.OUT_OF_FOLD, [1, 3])
    kind, clips = stage.tuning_plan(run("", [2]), 2)  # one fold: its training clips, seen
    assert kind == "training" and [c.filename for c in clips] == list("abc")
    kind, clips = stage.tuning_plan(run("d", [1, 2, 3]), 2)  # validation clips first
    assert kind == "validation" and [c.filename for c in clips] == ["d"]


def test_out_of_fold_thresholds_come_from_the_other_folds_never_from_the_fold_itself():
    """Fold 1's model is sure of everything (events 0.9 over a floor of 0.6), folds 2 and 3's are not (0.35 over
    0.2): tuned out of fold, fold 1 gets what suits folds 2 and 3, and its own soundscapes are never read."""
    from esc50_baseline.stages import detection as stage
    hop, labels = 0.1, ["a", "b"]

    def pool(event, floor):
        refs = {f"s{k}.wav": [(1.0, 2.0, "a"), (3.0, 4.0, "b")] for k in range(2)}
        curves_ = {}
        for name in refs:
            curves_[name] = np.full((50, 2), floor)
            curves_[name][10:20, 0] = curves_[name][30:40, 1] = event
        return stage.Pool(sorted(refs), curves_, refs, {name: 5.0 for name in refs})
    pools, asked = {1: pool(0.9, 0.6), 2: pool(0.35, 0.2), 3: pool(0.35, 0.2)}, []

    def tests(fold):
        asked.append(fold)
        return pools[fold]
    detection = {"thresholds": "tuned", "per_class_thresholds": False, "median_filter_seconds": 0.0,
                 "max_gap_seconds": 0.0, "min_event_seconds": 0.0}
    tuning = stage.tuning_pool(None, 1, (stage.OUT_OF_FOLD, [2, 3]), tests, detection)
    assert 1 not in asked
    assert sorted(tuning.names) == ["fold_2/s0.wav", "fold_2/s1.wav", "fold_3/s0.wav", "fold_3/s1.wav"]
    assert set(tuning.curves) == set(tuning.references) == set(tuning.durations) == set(tuning.names)
    tuned = stage.tuned_thresholds(tuning.curves, tuning.references, tuning.durations, labels, hop, detection)
    own = stage.tuned_thresholds(pools[1].curves, pools[1].references, pools[1].durations, labels, hop, detection)
    assert 0.2 < tuned[0] <= 0.35 and 0.6 < own[0] <= 0.9


def test_an_event_is_annotated_from_where_it_rises_over_the_background():
    """A clip whose first second is 40 dB under the rest (a fade-in under the background) is annotated from
    its second second; the samples placed are the whole clip."""
    clip = 0.5 * np.sin(2 * np.pi * 50 * np.arange(3 * FS) / FS)
    clip[:FS] *= 0.01
    noise = np.random.default_rng(3).normal(0, 0.3, 4 * FS)
    settings = SETTINGS.__class__(**dict(SETTINGS.__dict__, gap_seconds=(1.0, 1.0)))
    mix, annotations = soundscapes.compose(iter([(clip, "t")]), noise, FS, 10.0, False, settings,
                                           np.random.default_rng(4))
    (onset, offset, label), = annotations
    assert (onset, offset, label) == (pytest.approx(2.0, abs=0.021), pytest.approx(4.0), "t")  # placed at 1.0 s
    quiet = soundscapes.SoundscapeSettings(**dict(settings.__dict__, audible_db=60))
    assert soundscapes.compose(iter([(clip, "t")]), noise, FS, 10.0, False, quiet, np.random.default_rng(4))[1] == []


SEGMENT_FS = 8000


def bursts(spans, seconds=8.0, bands=None):
    """Quiet noise with loud band noise over each (start, end) span: of 0-1 kHz, or of the (low, high) Hz of
    bands[k] (wideband sounds: the segmenter looks for a rise over several mel bands)."""
    rng = np.random.default_rng(5)
    y = rng.normal(0, 0.003, int(seconds * SEGMENT_FS))
    for k, (start, end) in enumerate(spans):
        low, high = bands[k] if bands else (0, 1000)
        first, last = int(start * SEGMENT_FS), int(end * SEGMENT_FS)
        spectrum = np.fft.rfft(rng.normal(0, 0.3, last - first))
        freqs = np.fft.rfftfreq(last - first, 1 / SEGMENT_FS)
        y[first:last] += np.fft.irfft(spectrum * ((freqs >= low) & (freqs < high)), n=last - first)
    return y.astype(np.float32)


def test_active_segments_are_where_the_recording_rises_over_its_noise_floor():
    frame = segments.FRAME_SECONDS
    found = segments.active_segments(bursts([(2.0, 3.0), (5.0, 5.5), (5.56, 6.0), (7.0, 7.04)]), SEGMENT_FS, 10)
    # the second and third bursts are 0.06 s apart: joined; the 40 ms click is under the 0.1 s minimum
    assert len(found) == 2
    for (start, end), (want_start, want_end) in zip(found, [(2.0, 3.0), (5.0, 6.0)]):
        assert abs(start * frame - want_start) <= frame + 1e-9 and abs(end * frame - want_end) <= frame + 1e-9
    assert segments.active_segments(bursts([]), SEGMENT_FS, 10) == []  # noise alone: nothing stands out


def band_classifier(clip_samples, seen):
    """A stand-in model: class 0 for a clip whose spectral centroid is under 1.5 kHz, else class 1. Keeps
    every clip it is given in `seen`."""
    def scorer(clips):
        assert clips.shape[1] == clip_samples
        seen.extend(clips)
        power = np.abs(np.fft.rfft(clips, axis=1)) ** 2
        centroid = power @ np.fft.rfftfreq(clip_samples, 1 / SEGMENT_FS) / power.sum(axis=1)
        return np.stack([centroid < 1500, centroid >= 1500], axis=1).astype(np.float64)
    return scorer


def test_each_active_segment_is_classified_whole_padded_like_an_esc50_clip():
    seen, clip = [], 2 * SEGMENT_FS
    y = bursts([(1.0, 2.0), (4.0, 5.0)], bands=[(0, 1000), (2000, 4000)])
    curve = segments.segment_curve(y, SEGMENT_FS, clip, band_classifier(clip, seen), 10, classes=2)
    frame = segments.FRAME_SECONDS
    assert curve.shape == (int(8.0 / frame), 2) and len(seen) == 2
    for k, (start, end) in enumerate([(1.0, 2.0), (4.0, 5.0)]):
        inside = curve[int((start + 0.05) / frame):int((end - 0.05) / frame)]
        assert (inside[:, k] == 1).all() and (inside[:, 1 - k] == 0).all()
        assert not seen[k][int(1.1 * SEGMENT_FS):].any()  # the segment first, zeros after it
    assert not curve[int(2.1 / frame):int(3.9 / frame)].any() and not curve[int(5.1 / frame):].any()


def test_a_segment_longer_than_a_clip_is_classified_by_clip_long_windows_every_second():
    seen, clip = [], 1 * SEGMENT_FS
    y = bursts([(1.0, 4.0), (4.0, 7.5)], bands=[(0, 1000), (2000, 4000)])  # one active stretch of 6.5 s, two sounds
    curve = segments.segment_curve(y, SEGMENT_FS, clip, band_classifier(clip, seen), 10, classes=2)
    frame = segments.FRAME_SECONDS
    assert len(seen) == 7  # windows at 0, 1, ..., 5 s of the segment and one ending at its end
    assert (curve[int(1.1 / frame):int(3.9 / frame), 0] == 1).all()
    assert (curve[int(5.1 / frame):int(7.4 / frame), 1] == 1).all()
    straddled = curve[int(4.1 / frame):int(4.9 / frame)]  # under windows from 3 and from 4 s: their mean
    assert (straddled.sum(axis=1) == pytest.approx(1.0)) and (straddled[:, 1] > 0).all()


def test_denoising_takes_a_steady_background_down_and_keeps_the_event():
    rng = np.random.default_rng(8)
    y = rng.normal(0, 0.01, 10 * SEGMENT_FS)
    tone = 0.3 * np.sin(2 * np.pi * 1000 * np.arange(SEGMENT_FS) / SEGMENT_FS)
    y[4 * SEGMENT_FS:5 * SEGMENT_FS] += tone
    clean = denoise.without_noise_floor(y, SEGMENT_FS, segments.NOISE_PERCENTILE)
    level = lambda x: 10 * np.log10(np.mean(np.square(x, dtype=np.float64)))  # noqa: E731
    assert len(clean) == len(y)
    assert level(clean[:3 * SEGMENT_FS]) < level(y[:3 * SEGMENT_FS]) - 3  # the background alone: down
    inside = slice(4 * SEGMENT_FS + 500, 5 * SEGMENT_FS - 500)
    assert level(clean[inside]) == pytest.approx(level(tone[500:-500]), abs=0.3)  # the event: as loud as it was
    assert not denoise.without_noise_floor(np.zeros(5 * SEGMENT_FS), SEGMENT_FS, 20).any()
    short = rng.normal(0, 0.01, 100).astype(np.float32)
    np.testing.assert_array_equal(denoise.without_noise_floor(short, SEGMENT_FS, 20), short)


def test_with_denoise_the_segments_are_found_as_before_and_classified_without_the_floor():
    clip = 2 * SEGMENT_FS
    y = bursts([(1.0, 2.0), (4.0, 5.0)], bands=[(0, 1000), (2000, 4000)])
    plain, cleaned = [], []
    before = segments.segment_curve(y, SEGMENT_FS, clip, band_classifier(clip, plain), 10, classes=2)
    after = segments.segment_curve(y, SEGMENT_FS, clip, band_classifier(clip, cleaned), 10, classes=2, denoise=True)
    np.testing.assert_array_equal(before > 0, after > 0)  # the same segments, the same classes here
    expected = denoise.without_noise_floor(y, SEGMENT_FS, segments.NOISE_PERCENTILE)
    frame = int(segments.FRAME_SECONDS * SEGMENT_FS)
    for window, plain_window, (s, e) in zip(cleaned, plain, segments.active_segments(y, SEGMENT_FS, 10)):
        np.testing.assert_array_equal(window[:(e - s) * frame], expected[s * frame:e * frame])
        assert not np.array_equal(window, plain_window)


def test_a_stationary_background_keeps_the_clips_spectrum_but_not_its_events():
    """A clip of one burst (a bark, say) becomes noise of its long-term spectrum, level all along; looped as
    it is (background: clip), its burst would come back every clip length, unannotated."""
    noise = np.random.default_rng(6)
    clip = noise.normal(0, 1e-4, 5 * FS)
    clip[1000:1500] += noise.normal(0, 0.3, 500)  # a burst of 0.5 s, wideband like most sounds
    smeared = soundscapes.stationary(clip)
    np.testing.assert_allclose(np.abs(np.fft.rfft(smeared)), np.abs(np.fft.rfft(clip)), rtol=1e-6, atol=1e-9)
    levels = 20 * np.log10(soundscapes.frame_rms(smeared, 250))  # 0.25 s frames
    assert levels.max() - levels.min() < 3 and np.ptp(20 * np.log10(soundscapes.frame_rms(clip, 250))) > 40
    rng = np.random.default_rng(7)
    looped = soundscapes.SoundscapeSettings(**dict(SETTINGS.__dict__, background="clip"))
    mix = soundscapes.compose(iter([]), clip, FS, 20.0, False, looped, rng)[0]
    burst = np.abs(mix[1000:1500]).max()
    assert all(np.abs(mix[k * 5000 + 1000:k * 5000 + 1500]).max() == pytest.approx(burst, rel=1e-3) for k in range(4))
    assert np.abs(mix[2000:5000]).max() < burst / 100  # silent between its bursts


def test_a_run_of_several_folds_tunes_out_of_fold_and_a_one_fold_result_is_not_reused_for_it(tmp_path):
    root, system = str(tmp_path / "d"), tmp_path / "s"
    make_dataset(root, n_classes=3, n_folds=2, per_fold=3, seconds=2.0)
    with open(os.path.join(ROOT, "task_esc50.yaml")) as f:
        defaults = yaml.safe_load(f)["defaults"]
    params = tmp_path / "sets.yaml"
    params.write_text("active_set: small\nsets:\n  - set_id: small\n    learner: {model: cnn3, epochs: 1, "
                      "batch_size: 8, validation_amount: 0.0, monitor: {metric: last}}\n"
                      + yaml.safe_dump({"defaults": defaults}))

    def run(folds):
        done = subprocess.run([sys.executable, os.path.join(ROOT, "task_esc50.py"), "--dataset_path", root,
                               "--params_file", str(params), "--folds", folds, "--param", f"path.application={system}",
                               "--param", "detection.soundscapes.per_fold=2", "--param",
                               "detection.soundscapes.seconds=[6, 8]"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr
        return done.stdout.split("Sound event detection")[1]

    def record(fold):
        found = yaml.safe_load(next(system.glob(f"sed/*/sed_fold_{fold}.yaml")).read_text())
        return found["tuned_on"], found["tuning_folds"]
    both = run("1,2")
    assert "Fold 1: 2 test soundscapes, 2 for tuning (out of fold: the test soundscapes of fold(s) 2, each" in both
    assert "Fold 2: 2 test soundscapes, 2 for tuning (out of fold: the test soundscapes of fold(s) 1, each" in both
    assert ("Thresholds tuned out of fold (on the other folds' test soundscapes, each scored by its own fold's "
            "model): fold(s) 1, 2") in both
    assert record(1) == ("out_of_fold", ["2"]) and record(2) == ("out_of_fold", ["1"])
    alone = run("1")  # one fold: no other fold's soundscapes, so its (seen) training clips, not the cached result
    assert "Fold 1: 2 test soundscapes, 2 for tuning (of its training clips: it has no validation clips" in alone
    assert record(1) == ("training", []) and "Thresholds tuned on soundscapes of its training clips (seen by the " \
                                             "model): fold(s) 1" in alone
    again = run("1,2")
    assert "Fold 1: 2 test soundscapes, 2 for tuning (out of fold" in again and "Fold 2: cached" in again
    assert record(1) == ("out_of_fold", ["2"])
