#!/usr/bin/env python
"""Inference latency per clip, batch 1, one core: the Keras float model and each TFLite format.

    python benchmarks/bench_inference.py --dataset_path ~/esc50-dev [--model system/.../model_fold_4.keras]

Uses a trained cnn3 model when --model names one (the full-integer model is then calibrated on real
features); otherwise a freshly initialised cnn3 (latency does not depend on the weights' values).
Baseline: the Keras model called on one clip. Prints ms per clip and the speed-up of each format.
"""
import glob
import os
import tempfile

import numpy as np

from _common import defaults, machine, parser


def main():
    p = parser(__doc__.splitlines()[1])
    p.add_argument("--model", default=None, help="a trained .keras model (default: an untrained cnn3)")
    p.add_argument("--clips", type=int, default=200)
    args = p.parse_args()
    from esc50_baseline import runtime  # noqa: F401
    import keras
    from esc50_baseline.features.extraction import FeatureCache, FeatureSettings, extract_to_cache
    from esc50_baseline.models.builder import build_model
    from esc50_baseline.features.normalization import Normalizer
    from esc50_baseline.tflite.convert import FORMATS, convert
    from esc50_baseline.tflite.run import TFLiteModel
    from esc50_baseline.tflite.latency import latency_ms
    params = defaults()
    paths = sorted(glob.glob(os.path.join(args.dataset_path, "audio", "*.wav")))[:args.clips]
    folder = os.path.join(tempfile.gettempdir(), "esc50-bench-features")
    clips = {os.path.basename(p): p for p in paths}
    extract_to_cache(clips, FeatureSettings.from_params(params["feature_extractor"]), folder, show_progress=False)
    raw = FeatureCache(folder).load_many(list(clips))
    x = Normalizer.fit(raw)(raw)
    model = keras.models.load_model(args.model, compile=False) if args.model else \
        build_model(params["learner"], x.shape[1:], 50)
    print(f"Machine: {machine()}")
    print(f"Model: {args.model or 'cnn3 (untrained)'}; {len(x)} clips, batch 1, pinned to one core")
    keras_ms = latency_ms(lambda clip: model(clip[np.newaxis, ..., np.newaxis], training=False), x, len(x))
    print(f"{'format':<14} {'ms/clip':>9} {'speed-up':>9}")
    print(f"{'keras':<14} {keras_ms:>9.2f} {1.0:>8.2f}x   (baseline)")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in FORMATS:
            path = os.path.join(tmp, f"{fmt}.tflite")
            with open(path, "wb") as f:
                f.write(convert(model, fmt, representative=x[:100]))
            ms = latency_ms(TFLiteModel(path, num_threads=1).predict_one, x, len(x))
            print(f"{fmt:<14} {ms:>9.2f} {keras_ms / ms:>8.2f}x")


if __name__ == "__main__":
    main()
