#!/usr/bin/env python
"""Training throughput: the project's training loop against plain model.fit, same model, features, batch.

    python benchmarks/bench_training.py --dataset_path ~/esc50-dev [--fold 4] [--epochs 3] [--accuracy_epochs 60]

Baseline: cnn3 in float32, model.fit on in-memory numpy arrays of the normalized features, batch size
learner.batch_size. Project: trainer.train_fold as task_esc50.py runs it (tf.data pipeline with
prefetching, batch normalization in TensorFlow's fused kernel, precision policy learner.mixed_precision: auto
for this hardware), same batch size.
Throughput is training samples per second over `--epochs` epochs after one warm-up epoch. With
--accuracy_epochs N both precision policies also train N epochs through the project's loop, and their
test accuracy on the fold is printed: the speed must not cost accuracy.
"""
import os
import tempfile
import time

import numpy as np

from _common import defaults, machine, parser


def prepared_fold(dataset_path, fold, params):
    from esc50_baseline.data.dataset import Dataset, validation_split
    from esc50_baseline.features.extraction import FeatureCache, FeatureSettings, extract_to_cache
    from esc50_baseline.features.normalization import Normalizer
    dataset = Dataset(dataset_path)
    folder = os.path.join(tempfile.gettempdir(), "esc50-bench-features")
    extract_to_cache({c.filename: dataset.audio_path(c) for c in dataset.clips},
                     FeatureSettings.from_params(params["feature_extractor"]), folder, show_progress=False)
    cache = FeatureCache(folder)
    train, val = validation_split(dataset.train(fold), params["learner"]["validation_amount"], params["general"]["seed"] + fold)
    test = dataset.test(fold)
    norm = Normalizer.fit(cache.load_many([c.filename for c in train]))
    shape = norm.mean.shape + (cache.load(train[0].filename).shape[1],)
    load = lambda clips: norm(cache.load_many([c.filename for c in clips])) if clips else np.zeros((0,) + shape, np.float32)
    return dataset, (load(train), dataset.target_index(train)), (load(val), dataset.target_index(val)), \
        (load(test), dataset.target_index(test)), norm


def epoch_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.started)

    return EpochTimer()


def samples_per_second(n, timer):
    return n / float(np.mean(timer.times[1:]))  # the first epoch traces the graph: not counted


def main():
    p = parser(__doc__.splitlines()[1])
    p.add_argument("--fold", type=int, default=4)
    p.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up epoch)")
    p.add_argument("--accuracy_epochs", type=int, default=0, help="also compare test accuracy after N epochs")
    args = p.parse_args()
    from esc50_baseline.models import model_files
    from esc50_baseline import runtime
    from esc50_baseline.training import fused_batch_norm, trainer
    from esc50_baseline.models.builder import build_model
    import keras
    params = defaults()
    learner = dict(params["learner"], verbose=0)
    dataset, (x, y), (xv, yv), (xt, yt), _norm = prepared_fold(args.dataset_path, args.fold, params)
    n_classes = len(dataset.labels)
    print(f"Machine: {machine()}")
    print(f"Fold {args.fold}: {len(x)} training clips, cnn3, batch {learner['batch_size']}, "
          f"{args.epochs} timed epochs after 1 warm-up")

    runtime.setup(0, mixed_precision=False)
    model = build_model(learner, x.shape[1:], n_classes)
    model.compile(optimizer=keras.optimizers.Adam(learner["learning_rate"]), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    timer = epoch_timer()
    model.fit(x[..., np.newaxis], trainer.one_hot(y, n_classes), batch_size=learner["batch_size"],
              epochs=1 + args.epochs, verbose=0, callbacks=[timer])
    baseline = samples_per_second(len(x), timer)

    precision = runtime.auto_precision()
    runtime.setup(0, mixed_precision=precision)
    model = fused_batch_norm.for_training(build_model(learner, x.shape[1:], n_classes))  # as do_learning trains
    timer = epoch_timer()
    with tempfile.TemporaryDirectory() as logs:
        trainer.train_fold(model, x, y, xv[:0], yv[:0], n_classes, dict(learner, epochs=1 + args.epochs), 0, logs,
                            extra_callbacks=[timer])
    project = samples_per_second(len(x), timer)
    print(f"{'':<44} {'samples/s':>10}")
    print(f"{'baseline (model.fit on numpy, float32)':<44} {baseline:>10.1f}")
    print(f"{'project (train_fold, ' + str(precision or 'float32') + ')':<44} {project:>10.1f}")
    print(f"speed-up: {project / baseline:.2f}x")

    if args.accuracy_epochs:
        print(f"\nAccuracy after {args.accuracy_epochs} epochs (project loop; best epoch by val_accuracy, "
              f"test fold {args.fold}):")
        for policy in (False, precision):
            runtime.setup(0, mixed_precision=policy)
            model = fused_batch_norm.for_training(build_model(learner, x.shape[1:], n_classes))
            started = time.perf_counter()
            run = dict(learner, epochs=args.accuracy_epochs, monitor={"metric": "val_accuracy", "initial_delay": 1})
            with tempfile.TemporaryDirectory() as logs:
                trainer.train_fold(model, x, y, xv, yv, n_classes, run, 0, logs)
            accuracy = float(np.mean(model_files.predict(model, xt).argmax(axis=1) == yt))
            print(f"  {str(policy or 'float32'):<16} test accuracy {100 * accuracy:5.1f} %   "
                  f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
