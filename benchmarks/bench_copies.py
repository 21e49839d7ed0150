#!/usr/bin/env python
"""Waveform copies: one phase vocoder for the time stretch and the pitch shift against librosa's two, same clips.

    python benchmarks/bench_copies.py --dataset_path ~/esc50-dev [--clips 60] [--rounds 3]

Baseline: `learner.augmentation.waveform.vocoder: separate` (librosa's time_stretch, then its pitch_shift:
a vocoder each). Against it: `joint` (one time_stretch by the product of both rates, then one resampling).
Both make the copies of the same clips with the same draws (the strong recipe's waveform settings), one
process on one core, in alternating rounds so that both see the same machine; the clips are read once
beforehand. Prints each method's copies/s (median round), the ratio, and, for context, what reading a clip and
its log-mel cost, which every copy pays on top in a real run.
"""
import glob
import os
import statistics
import time

from _common import defaults, machine, parser


def main():
    p = parser(__doc__.splitlines()[1])
    p.add_argument("--clips", type=int, default=60, help="copies of the first N clips in each round")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    from esc50_baseline.data.audio import read_clip
    from esc50_baseline.features import waveform_augmentation as wa
    from esc50_baseline.features.extraction import FeatureSettings, LogMel
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    settings = FeatureSettings.from_params(defaults()["feature_extractor"])
    waveform = dict(defaults()["learner"]["augmentation"]["waveform"], copies=1, background_probability=0.0)
    methods = {v: wa.WaveformSettings.from_params(dict(waveform, vocoder=v)) for v in ("separate", "joint")}
    paths = sorted(glob.glob(os.path.join(args.dataset_path, "audio", "*.wav")))[:args.clips]
    if not paths:
        raise SystemExit(f"No .wav files under {os.path.join(args.dataset_path, 'audio')}; pass an ESC-50-layout "
                         "folder as --dataset_path.")
    started = time.perf_counter()
    clips = [read_clip(path, settings.fs, settings.n_samples) for path in paths]
    read_s = (time.perf_counter() - started) / len(paths)
    logmel = LogMel(settings)
    started = time.perf_counter()
    for y in clips:
        logmel(y)
    logmel_s = (time.perf_counter() - started) / len(paths)
    wa.augment(clips[0], None, [0, 0, 1], methods["separate"], settings.fs)  # librosa's first-call set-up
    seconds = {v: [] for v in methods}
    for _ in range(args.rounds):
        for name, method in methods.items():
            started = time.perf_counter()
            for i, y in enumerate(clips):
                wa.augment(y, None, [0, i, 1], method, settings.fs)
            seconds[name].append((time.perf_counter() - started) / len(clips))
    print(f"Machine: {machine()}; one core")
    print(f"Clips: {len(clips)} from {args.dataset_path}; {args.rounds} alternating rounds, median shown")
    print(f"{'vocoder':<10} {'ms a copy':>10} {'copies/s':>9}")
    median = {name: statistics.median(s) for name, s in seconds.items()}
    for name, s in median.items():
        print(f"{name:<10} {1000 * s:>10.1f} {1 / s:>9.1f}")
    print(f"joint is {median['separate'] / median['joint']:.2f}x as fast as separate (the augmentation alone); "
          f"with a clip's reading ({1000 * read_s:.1f} ms) and log-mel ({1000 * logmel_s:.1f} ms), "
          f"{(median['separate'] + read_s + logmel_s) / (median['joint'] + read_s + logmel_s):.2f}x a cached copy")


if __name__ == "__main__":
    main()
