#!/usr/bin/env python
"""Feature extraction: the project's cached, parallel extractor against a plain librosa loop, same clips.

    python benchmarks/bench_features.py --dataset_path ~/esc50-dev [--clips 400] [--cold]

Baseline: for each file, librosa.load + librosa.feature.melspectrogram + log, same settings, one process
(no cache writes). Project: extract_to_cache into an empty folder, every core, reading, STFT, mel and
the atomic cache writes all timed, worker start-up included. Prints clips/s for both, the ratio, and the
largest absolute difference between the two log-mel results. By default the clips are read from the page
cache (each side reads them once first); --cold drops the page cache before each side instead (needs
root), as on a first run where every clip comes from disk.
"""
import glob
import os
import tempfile
import time

import numpy as np

from _common import defaults, machine, parser


def baseline_logmel(path, settings):
    import librosa
    import scipy.signal
    y, _ = librosa.load(path, sr=settings.fs, mono=True)
    y = librosa.util.fix_length(y, size=settings.n_samples)
    window = scipy.signal.get_window("hamming", settings.win_length, fftbins=True)
    mel = librosa.feature.melspectrogram(y=y, sr=settings.fs, n_fft=settings.n_fft, hop_length=settings.hop_length,
                                         win_length=settings.win_length, window=window, center=True, power=1.0,
                                         n_mels=settings.n_mels, fmin=settings.fmin, fmax=settings.fmax)
    return np.log(mel + settings.log_offset)


def prepare_reads(paths, cold):
    if cold:
        os.sync()
        try:
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("3\n")
        except OSError as e:
            raise SystemExit(f"--cold needs to write /proc/sys/vm/drop_caches ({e.strerror}); run as root.")
    else:
        for path in paths:
            with open(path, "rb") as f:
                f.read()


def main():
    p = parser(__doc__.splitlines()[1])
    p.add_argument("--clips", type=int, default=0, help="use the first N clips (default: all)")
    p.add_argument("--cold", action="store_true", help="drop the page cache before each side (root only)")
    args = p.parse_args()
    from esc50_baseline.features.extraction import FeatureCache, FeatureSettings, extract_to_cache
    settings = FeatureSettings.from_params(defaults()["feature_extractor"])
    paths = sorted(glob.glob(os.path.join(args.dataset_path, "audio", "*.wav")))
    paths = paths[:args.clips] if args.clips else paths
    print(f"Machine: {machine()}")
    print(f"Clips: {len(paths)} from {args.dataset_path}, {'cold (from disk)' if args.cold else 'warm (page cache)'}")

    baseline_logmel(paths[0], settings)  # librosa's first call compiles and caches; not counted
    prepare_reads(paths, args.cold)
    started = time.perf_counter()
    reference = [baseline_logmel(path, settings) for path in paths]
    baseline_s = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as folder:
        prepare_reads(paths, args.cold)
        started = time.perf_counter()
        failures = extract_to_cache({os.path.basename(p): p for p in paths}, settings, folder, workers=0,
                                    show_progress=False)
        project_s = time.perf_counter() - started
        assert not failures, failures
        cache = FeatureCache(folder)
        max_diff = max(float(np.max(np.abs(cache.load(os.path.basename(path)) - ref)))
                       for path, ref in zip(paths, reference))

    n = len(paths)
    print(f"{'':<28} {'clips/s':>9} {'ms/clip':>9} {'total s':>9}")
    print(f"{'baseline (librosa loop)':<28} {n / baseline_s:>9.1f} {1000 * baseline_s / n:>9.2f} {baseline_s:>9.2f}")
    print(f"{'project (extract_to_cache)':<28} {n / project_s:>9.1f} {1000 * project_s / n:>9.2f} {project_s:>9.2f}")
    print(f"speed-up: {baseline_s / project_s:.1f}x   max |log-mel difference|: {max_diff:.2e}   "
          f"all of ESC-50 (2000 clips) at this rate: {2000 * project_s / n:.1f} s")


if __name__ == "__main__":
    main()
