import io

import numpy as np

from esc50_baseline.features.normalization import Normalizer
from esc50_baseline.models import model_files
from esc50_baseline import runtime
from esc50_baseline.training import trainer
from esc50_baseline.models.builder import build_model


def separable(n_per_class, n_classes, rng):
    """Class k: noise plus a bright band at mel rows 10k..10k+3 (one band per pooled frequency cell)."""
    x = rng.normal(0, 1, size=(n_per_class * n_classes, 40, 50)).astype(np.float32)
    y = np.repeat(np.arange(n_classes), n_per_class)
    for i, k in enumerate(y):
        x[i, 10 * k:10 * k + 4] += 3.0
    return x, y


def small_learner(defaults, epochs=8):
    learner = dict(defaults["learner"], epochs=epochs, batch_size=16, verbose=0, learning_rate=0.003)
    learner["families"] = dict(learner["families"], tiny={"filters": [8, 8], "pools": {1: [2, 2], 2: [5, None]}})
    learner["model"], learner["kernel_size"], learner["dense_units"] = "tiny", 3, [16]
    learner["monitor"] = {"metric": "val_accuracy", "initial_delay": 1}
    return learner


def kill_after(epochs):
    """A callback that interrupts training like Ctrl-C at the end of epoch `epochs` (after its checkpoint)."""
    import keras

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == epochs:
                raise KeyboardInterrupt

    return Kill()


def fit(defaults, tmp_path, seed=0):
    runtime.setup(seed)
    rng = np.random.default_rng(0)
    x, y = separable(20, 4, rng)
    xv, yv = separable(6, 4, rng)
    learner = small_learner(defaults)
    model = build_model(learner, x.shape[1:], 4)
    history, best_epoch, best = trainer.train_fold(model, x, y, xv, yv, 4, learner, seed, str(tmp_path / "log"))
    return model, history, best_epoch, best


def test_training_learns_separable_classes_and_keeps_best_epoch(defaults, tmp_path):
    model, history, best_epoch, best = fit(defaults, tmp_path)
    rng = np.random.default_rng(7)
    xt, yt = separable(10, 4, rng)
    accuracy = np.mean(model_files.predict(model, xt).argmax(axis=1) == yt)
    assert accuracy >= 0.9
    assert best == max(history["val_accuracy"])
    assert history["val_accuracy"][best_epoch - 1] == best
    assert (tmp_path / "log" / "history.csv").exists()


def test_same_seed_same_weights_on_cpu(defaults, tmp_path):
    first = fit(defaults, tmp_path / "a", seed=5)[0].get_weights()
    second = fit(defaults, tmp_path / "b", seed=5)[0].get_weights()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    other = fit(defaults, tmp_path / "c", seed=6)[0].get_weights()  # code that ignored the seed would pass above
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))


def test_model_saved_atomically_and_reloads(defaults, tmp_path):
    import keras
    learner = small_learner(defaults)
    model = build_model(learner, (40, 50), 4)
    path = str(tmp_path / "m" / "model.keras")
    model_files.save_model_atomic(model, path)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.keras"]
    x = np.zeros((1, 40, 50), np.float32)
    np.testing.assert_allclose(model_files.predict(keras.models.load_model(path), x), model_files.predict(model, x),
                               rtol=1e-6)
    # a save cut off half-way (here: the disk fills after 1000 bytes) leaves the old model whole, and no temporary file
    good = open(path, "rb").read()
    other = build_model(learner, (40, 50), 4)
    real_open = open

    class FullDisk:
        def __init__(self, f):
            self.f, self.written = f, 0

        def write(self, data):
            self.written += len(data)
            if self.written > 1000:
                raise OSError(28, "No space left on device")
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.f.__exit__(*exc)

    import builtins
    from esc50_baseline.errors import UserError

    def cut_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        return FullDisk(f) if "w" in mode and str(file).endswith(".keras") else f
    builtins.open = cut_open
    try:
        with pytest.raises(UserError, match="is full"):
            model_files.save_model_atomic(other, path)
    finally:
        builtins.open = real_open
    assert open(path, "rb").read() == good
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.keras"]


import pytest


@pytest.mark.parametrize("recipe", [{}, {"lr_schedule": "cosine", "warmup_epochs": 1, "label_smoothing": 0.1,
                                         "augmentation": {"time_shift": 5, "freq_masks": 2, "freq_mask_width": 4,
                                                          "time_masks": 1, "time_mask_width": 8,
                                                          "mixup_alpha": 0.3, "steady_background": 0.5,
                                                          "steady_background_snr_db": [10, 30]}},
                                    {"mixed_precision": "mixed_bfloat16"}])
def test_interrupted_training_resumes_to_identical_weights(defaults, tmp_path, recipe):
    rng = np.random.default_rng(0)
    x, y = separable(20, 4, rng)
    xv, yv = separable(6, 4, rng)
    learner = dict(small_learner(defaults), epochs=4, **recipe)

    def run(checkpoint, extra=()):
        runtime.setup(3, mixed_precision=recipe.get("mixed_precision", False))  # as a new process would
        model = build_model(learner, x.shape[1:], 4)
        out = trainer.train_fold(model, x, y, xv, yv, 4, learner, 3, str(tmp_path / "log"),
                                  checkpoint_path=str(checkpoint), extra_callbacks=extra,
                                  normalizer=Normalizer(np.zeros(x.shape[1]), np.ones(x.shape[1])))
        return model, out

    straight_model, (straight_history, straight_best_epoch, _) = run(tmp_path / "a.npz")

    try:
        run(tmp_path / "b.npz", [kill_after(2)])
    except KeyboardInterrupt:
        pass
    assert (tmp_path / "b.npz").exists()
    resumed_model, (resumed_history, resumed_best_epoch, _) = run(tmp_path / "b.npz")
    assert len(resumed_history["loss"]) == 4
    assert resumed_history == straight_history
    assert resumed_best_epoch == straight_best_epoch
    for a, b in zip(straight_model.get_weights(), resumed_model.get_weights()):
        np.testing.assert_array_equal(a, b)
    runtime.setup(0)


def averaging_learner(defaults, epochs):
    return dict(small_learner(defaults, epochs=epochs), ema_momentum=0.8,
                monitor={"metric": "last", "initial_delay": 0})


@pytest.mark.parametrize("precision", [False, "mixed_bfloat16"])  # bfloat16: the average inside a loss-scale optimizer
def test_training_ends_with_the_moving_average_of_the_weights_after_each_step(defaults, tmp_path, precision):
    import keras
    runtime.setup(0, mixed_precision=precision)
    rng = np.random.default_rng(0)
    x, y = separable(20, 4, rng)
    learner = averaging_learner(defaults, epochs=3)
    model = build_model(learner, x.shape[1:], 4)
    steps = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            steps.append([np.array(v) for v in self.model.trainable_variables])

    trainer.train_fold(model, x, y, x[:0], y[:0], 4, learner, 0, str(tmp_path / "log"), extra_callbacks=[Record()])
    assert len(steps) == 3 * 5  # 80 clips in batches of 16
    average = steps[0]  # the first step's weights start the average
    for weights in steps[1:]:
        average = [0.8 * a + 0.2 * w for a, w in zip(average, weights)]
    final = [np.array(v) for v in model.trainable_variables]
    for f, a in zip(final, average):
        np.testing.assert_allclose(f, a, rtol=1e-4, atol=1e-6)
    # and not the last step's weights, which it would be without the average
    assert max(np.abs(f - w).max() for f, w in zip(final, steps[-1])) > 1e-3
    runtime.setup(0)


# mid-way; after the last epoch's checkpoint, before training ends (and before the statistics are recomputed)
@pytest.mark.parametrize("killed_after, refresh", [(2, False), (4, False), (4, True)])
def test_a_training_with_a_weight_average_resumes_to_identical_weights(defaults, tmp_path, killed_after, refresh):
    rng = np.random.default_rng(0)
    x, y = separable(20, 4, rng)
    learner = dict(averaging_learner(defaults, epochs=4), ema_refresh_batch_norm=refresh)

    def run(checkpoint, extra=()):
        runtime.setup(3)
        model = build_model(learner, x.shape[1:], 4)
        trainer.train_fold(model, x, y, x[:0], y[:0], 4, learner, 3, str(tmp_path / "log"),
                           checkpoint_path=str(checkpoint), extra_callbacks=extra)
        return model.get_weights()

    straight = run(tmp_path / "a.npz")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b.npz", [kill_after(killed_after)])
    for a, b in zip(straight, run(tmp_path / "b.npz")):
        np.testing.assert_array_equal(a, b)
    runtime.setup(0)


def batch_statistics(model, layer, x, rows):
    """The plain average over batches (`rows`: each batch's rows of x) of the mean and uncorrected variance per
    channel of the input of `layer`, a batch normalization whose input the weights alone make (the first)."""
    import keras
    before = keras.Model(model.input, layer.input)
    stats = [(a.mean(axis=(0, 1, 2)), a.var(axis=(0, 1, 2)))
             for a in (np.asarray(before(x[r][..., None], training=False)) for r in rows)]
    return np.mean([m for m, _ in stats], axis=0), np.mean([v for _, v in stats], axis=0)


def test_the_averaged_weights_get_batch_normalization_statistics_of_their_own(defaults, tmp_path):
    """With ema_refresh_batch_norm, the statistics are those of the final (averaged) weights over one more epoch
    of training batches; without it, those the raw weights left behind, which differ."""
    import keras
    x, y = separable(20, 4, np.random.default_rng(0))
    finals = {}
    for refresh in (False, True):
        runtime.setup(0)
        learner = dict(averaging_learner(defaults, epochs=3), ema_refresh_batch_norm=refresh)
        model = build_model(learner, x.shape[1:], 4)
        trainer.train_fold(model, x, y, x[:0], y[:0], 4, learner, 7, str(tmp_path / f"log{refresh}"))
        first = next(l for l in model.layers if isinstance(l, keras.layers.BatchNormalization))
        order = trainer.epoch_orders(len(y), 7, 3, 4)[0]  # the epoch after the last, seed 7
        mean, variance = batch_statistics(model, first, x, order.reshape(5, 16))
        finals[refresh] = np.abs(first.moving_mean - mean).max(), np.abs(first.moving_variance - variance).max()
    assert finals[True][0] < 1e-5 and finals[True][1] < 1e-4 * variance.max()
    assert finals[False][0] > 100 * finals[True][0] + 1e-4 and finals[False][1] > 1e-2 * variance.max()
    runtime.setup(0)


def test_recomputed_statistics_ignore_the_old_ones_and_dropout_and_restore_the_layers(defaults):
    import keras
    runtime.setup(0)
    x, y = separable(8, 4, np.random.default_rng(1))
    model = build_model(small_learner(defaults), x.shape[1:], 4)
    norms = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    dropouts = [l for l in model.layers if isinstance(l, keras.layers.Dropout)]
    assert len(norms) == 2 and dropouts and all(l.rate > 0 for l in dropouts)
    rates, momenta = [l.rate for l in dropouts], [l.momentum for l in norms]
    batches = [(x[i:i + 8][..., None], None) for i in (0, 8, 16, 24)]
    assert trainer.refresh_batch_norm(model, batches) == 4
    once = [np.array(v) for l in norms for v in (l.moving_mean, l.moving_variance)]
    norms[1].moving_mean.assign(np.full(norms[1].moving_mean.shape, 5.0))  # old statistics count for nothing
    trainer.refresh_batch_norm(model, batches)
    for a, b in zip(once, [np.array(v) for l in norms for v in (l.moving_mean, l.moving_variance)]):
        np.testing.assert_array_equal(a, b)  # and with dropout on, the second layer's would differ
    mean, variance = batch_statistics(model, norms[0], x, [range(i, i + 8) for i in (0, 8, 16, 24)])
    np.testing.assert_allclose(once[0], mean, atol=1e-5)
    np.testing.assert_allclose(once[1], variance, rtol=1e-4)
    assert [l.rate for l in dropouts] == rates and [l.momentum for l in norms] == momenta


def test_model_trained_in_bfloat16_is_saved_as_float32(defaults, tmp_path):
    from esc50_baseline.tflite.convert import convert
    runtime.setup(0, mixed_precision="mixed_bfloat16")
    learner = small_learner(defaults, epochs=1)
    x, y = separable(4, 4, np.random.default_rng(0))
    model = build_model(learner, x.shape[1:], 4)
    trainer.train_fold(model, x, y, x[:0], y[:0], 4, learner, 0, str(tmp_path / "log"))
    runtime.setup(0)
    plain = model_files.as_float32(model)
    assert {layer.dtype_policy.name for layer in plain.layers} == {"float32"}
    for a, b in zip(model.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(model_files.predict(plain, x), model_files.predict(model, x), atol=0.02)  # bf16 rounding
    assert len(convert(plain, "float32")) > 0  # a bfloat16 graph would not convert


def test_epoch_orders_draw_copies_and_balance_classes():
    n = 10
    plain = trainer.epoch_orders(n, 0, 0, 3)
    assert all(sorted(row) == list(range(n)) for row in plain)
    with_copies = trainer.epoch_orders(n, 0, 0, 3, versions=3)
    np.testing.assert_array_equal(with_copies % n, plain)  # the same clip order, each clip in some version
    assert set((with_copies // n).ravel()) == {0, 1, 2}
    np.testing.assert_array_equal(trainer.epoch_orders(n, 0, 1, 3, versions=3), with_copies[1:])  # resumable
    labels = np.array([0] * 90 + [1] * 10)
    balanced = trainer.epoch_orders(100, 0, 0, 50, labels=labels)
    share = np.mean(labels[balanced.ravel()] == 1)
    assert 0.45 < share < 0.55  # 10 % of the clips, half of the draws


def test_training_uses_the_augmented_copies(defaults, tmp_path):
    """Copies whose class bands are dips instead of peaks: a model trained with them recognises dips
    too, one trained on the originals alone does not."""
    def dips(x, y):
        out = x.copy()
        for i, k in enumerate(y):
            out[i, 10 * k:10 * k + 4] -= 6.0  # the +3 band of `separable` becomes -3
        return out

    rng = np.random.default_rng(0)
    x, y = separable(20, 4, rng)
    learner = dict(small_learner(defaults, epochs=10), monitor={"metric": "val_accuracy", "initial_delay": 10})
    moved = dips(x, y)[np.newaxis]
    test = dips(*separable(10, 4, np.random.default_rng(9)))
    accuracy = {}
    for name, copies in (("plain", None), ("copies", moved)):
        runtime.setup(0)
        model = build_model(learner, x.shape[1:], 4)
        trainer.train_fold(model, x, y, x[:0], y[:0], 4, learner, 0, str(tmp_path / name), train_copies=copies)
        accuracy[name] = np.mean(model_files.predict(model, test).argmax(axis=1) == np.repeat(np.arange(4), 10))
    assert accuracy["copies"] >= 0.9 and accuracy["copies"] > accuracy["plain"] + 0.2


def test_diverging_training_stops_with_a_clear_error(defaults, tmp_path):
    import keras
    from esc50_baseline.errors import UserError
    runtime.setup(0)
    model = build_model(small_learner(defaults), (40, 50), 4)
    checkpoint = trainer.Checkpoint(str(tmp_path / "c.npz"))
    _keeper, callbacks = trainer.epoch_callbacks("val_accuracy", 1, str(tmp_path / "h.csv"), checkpoint, {})
    for callback in callbacks:
        callback.set_model(model)
        callback.set_params({"epochs": 10, "steps": 1, "verbose": 0})  # as fit sets them
    model.compile(optimizer=keras.optimizers.Adam(), loss="categorical_crossentropy")
    callbacks[-1].on_epoch_end(5, {"loss": 1.0})
    assert (tmp_path / "c.npz").exists()
    before = (tmp_path / "c.npz").read_bytes()
    weights = model.get_weights()
    weights[0][0] = np.nan
    model.set_weights(weights)
    with pytest.raises(UserError, match="diverged in epoch 7"):
        callbacks[-1].on_epoch_end(6, {"loss": float("nan")})
    assert (tmp_path / "c.npz").read_bytes() == before  # the last good checkpoint is not overwritten


def test_bfloat16_training_skips_a_non_finite_step(defaults, tmp_path):
    """One batch whose gradient is not finite leaves the weights as they were, and training goes on."""
    runtime.setup(0, mixed_precision="mixed_bfloat16")
    learner = small_learner(defaults)
    model = build_model(learner, (40, 50), 4)
    model.compile(optimizer=trainer.optimizer(learner, 1, 1), loss="categorical_crossentropy")
    assert type(model.optimizer).__name__ == "LossScaleOptimizer"
    x, y = separable(2, 4, np.random.default_rng(0))
    targets = trainer.one_hot(y, 4)
    model.train_on_batch(x[..., None], targets)
    before = [np.array(w) for w in model.get_weights() if w.ndim > 1]
    poisoned = targets.copy()
    poisoned[0, 0] = np.inf  # an infinite loss, so infinite gradients
    model.train_on_batch(x[..., None], poisoned)
    after = [np.array(w) for w in model.get_weights() if w.ndim > 1]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    model.train_on_batch(x[..., None], targets)
    assert all(np.isfinite(w).all() for w in model.get_weights())
    runtime.setup(0)


def test_checkpoint_of_another_optimizer_is_not_restored(defaults, tmp_path, capsys):
    """A checkpoint written under float32 (plain Adam) resumes a float32 run but is ignored by a bfloat16
    run (loss-scale optimizer), which trains from its first epoch."""
    import keras

    class Epochs(keras.callbacks.Callback):
        def __init__(self, stop_after_first=False):
            super().__init__()
            self.started, self.stop_after_first = [], stop_after_first

        def on_epoch_begin(self, epoch, logs=None):
            self.started.append(epoch + 1)

        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = self.stop_after_first

    x, y = separable(4, 4, np.random.default_rng(0))
    learner = small_learner(defaults, epochs=2)

    def train(folder, precision, checkpoint, stop_after_first=False):
        runtime.setup(0, mixed_precision=precision)
        epochs = Epochs(stop_after_first)
        model = build_model(learner, x.shape[1:], 4)
        trainer.train_fold(model, x, y, x[:0], y[:0], 4, learner, 0, str(tmp_path / folder),
                           checkpoint_path=str(tmp_path / checkpoint), extra_callbacks=[epochs])
        return epochs.started

    try:
        assert train("a", "float32", "c.npz", stop_after_first=True) == [1]
        (tmp_path / "copy.npz").write_bytes((tmp_path / "c.npz").read_bytes())
        assert train("b", "float32", "copy.npz") == [2]  # the same optimizer resumes at epoch 2
        capsys.readouterr()
        assert train("c", "mixed_bfloat16", "c.npz") == [1, 2]  # another optimizer starts over
        assert "written by a different model or optimizer" in capsys.readouterr().out
    finally:
        runtime.setup(0)


def test_a_finished_fold_s_checkpoint_is_removed(tmp_path):
    path = tmp_path / "checkpoint_fold_1.npz"
    path.write_bytes(b"state")
    trainer.Checkpoint(str(path)).remove()
    assert not path.exists()
    trainer.Checkpoint(str(path)).remove()  # already gone: nothing to do, no error


def test_checkpoint_round_trip_restores_model_optimizer_and_state(defaults, tmp_path):
    """Saved after a training step, restored into a freshly built model: every model and optimizer variable,
    the epoch, the history and the best epoch's weights come back as they were."""
    x, y = separable(4, 4, np.random.default_rng(0))
    learner = small_learner(defaults, epochs=2)

    def compiled():
        runtime.setup(0)
        model = build_model(learner, x.shape[1:], 4)
        model.compile(optimizer=trainer.optimizer(learner, replicas=1, steps_per_epoch=1), loss="categorical_crossentropy")
        return model

    trained = compiled()
    trained.train_on_batch(x[..., None], np.eye(4)[y])
    checkpoint = trainer.Checkpoint(str(tmp_path / "checkpoint_fold_1.npz"))
    keeper, _ = trainer.epoch_callbacks("val_loss", 1, str(tmp_path / "h.csv"), checkpoint, {})
    keeper.best, keeper.best_epoch, keeper.best_weights = 0.5, 1, [w * 2 for w in trained.get_weights()]
    checkpoint.save(trained, 1, {"loss": [0.9]}, keeper)

    fresh = compiled()
    fresh_keeper, _ = trainer.epoch_callbacks("val_loss", 1, str(tmp_path / "h2.csv"), checkpoint, {})
    assert checkpoint.restore(fresh, fresh_keeper) == (1, {"loss": [0.9]})
    assert any(np.any(v != 0) for v in trained.optimizer.variables[2:])  # the step moved the optimizer's moments
    for saved, restored in ((trained.variables, fresh.variables), (trained.optimizer.variables, fresh.optimizer.variables)):
        assert len(saved) == len(restored)
        for a, b in zip(saved, restored):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert (fresh_keeper.best, fresh_keeper.best_epoch) == (0.5, 1)
    for a, b in zip(keeper.best_weights, fresh_keeper.best_weights):
        np.testing.assert_array_equal(a, b)


def test_each_epoch_s_time_is_logged_and_a_resumed_training_keeps_its_earlier_runs_times(defaults, tmp_path):
    """history.csv holds each epoch's wall-clock seconds. A resumed training keeps the times of the epochs its
    checkpoint holds; epochs logged by a version without the column count as untimed, not as zero."""
    import pandas as pd
    x, y = separable(10, 4, np.random.default_rng(0))
    learner = dict(small_learner(defaults), epochs=4)
    csv = tmp_path / "log" / "history.csv"

    def run(extra=()):
        runtime.setup(3)
        model = build_model(learner, x.shape[1:], 4)
        trainer.train_fold(model, x, y, x[:0], y[:0], 4, learner, 3, str(tmp_path / "log"),
                           checkpoint_path=str(tmp_path / "c.npz"), extra_callbacks=extra)

    with pytest.raises(KeyboardInterrupt):
        run([kill_after(2)])
    first = pd.read_csv(csv)["seconds"].tolist()
    assert len(first) == 2 and min(first) > 0
    run()
    seconds = pd.read_csv(csv)["seconds"].tolist()
    assert len(seconds) == 4 and seconds[:2] == first and min(seconds) > 0
    assert trainer.training_seconds(str(csv)) == (pytest.approx(sum(seconds)), 4, 4)

    # the same interruption, its epochs logged by the code before the column existed
    (tmp_path / "c.npz").unlink()
    with pytest.raises(KeyboardInterrupt):
        run([kill_after(2)])
    pd.read_csv(csv).drop(columns="seconds").to_csv(csv, index=False)
    run()
    seconds = pd.read_csv(csv)["seconds"].tolist()
    assert np.isnan(seconds[:2]).all() and min(seconds[2:]) > 0
    assert trainer.training_seconds(str(csv)) == (pytest.approx(sum(seconds[2:])), 2, 4)
    runtime.setup(0)


def test_time_left_is_the_median_of_the_last_ten_epochs_times_those_to_come():
    seconds = [100.0] * 5 + [30.0] * 9 + [300.0]  # a slow start, then 30 s, one slow epoch lately
    assert trainer.time_left_line(15, 200, seconds) == "  epoch 15 of 200, 30.0 s an epoch, about 1.5 h left"
    assert trainer.time_left_line(190, 200, [12.0, 14.0]) == "  epoch 190 of 200, 13.0 s an epoch, about 2 min left"


def test_a_training_shows_one_progress_line_a_tenth_of_the_way_in_a_log(defaults, tmp_path, capsys):
    """Keras's own epoch log off (the default): a log gets the fold's line every 10 epochs and at the last, each with
    the epoch, the loss and accuracy, and the time left."""
    runtime.setup(0)
    x, y = separable(4, 2, np.random.default_rng(0))
    learner = dict(small_learner(defaults, epochs=21), verbose=0)
    trainer.train_fold(build_model(learner, x.shape[1:], 2), x, y, x[:0], y[:0], 2, learner, 0, str(tmp_path / "l"),
                       label="Fold 3")
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == ["  Fold 3: epoch 10/21", "  Fold 3: epoch 20/21",
                                                      "  Fold 3: epoch 21/21"]
    assert all(" loss " in line and " accuracy " in line and line.endswith(" left") for line in lines)


def test_on_a_terminal_the_progress_line_is_redrawn_in_place():
    class Terminal(io.StringIO):
        def isatty(self):
            return True
    out = Terminal()
    progress = trainer.EpochProgress(3, out)
    for done in (1, 2, 3):
        progress.show(done, trainer.progress_line("Fold 1", done, 3, {"loss": 1.0 / done, "val_accuracy": 0.5},
                                                  [2.0] * done))
    text = out.getvalue()
    assert text.count("\r") == 3 and text.count("\n") == 1 and text.endswith("left\n")
    assert "\r  Fold 1: epoch 2/3, loss 0.500, val_accuracy 0.500; 2.0 s an epoch, about 0 min left" in text


def test_a_resumed_training_s_time_left_counts_the_epochs_of_its_earlier_run(defaults, tmp_path, capsys):
    """The epochs before a resume keep their logged seconds, and the time-left line uses them: eight logged
    epochs of 1000 s outweigh the two this run trains before its tenth."""
    import pandas as pd
    x, y = separable(4, 2, np.random.default_rng(0))
    learner = dict(small_learner(defaults, epochs=12), verbose=2)
    csv = tmp_path / "l" / "history.csv"

    def run(extra=()):
        runtime.setup(0)
        trainer.train_fold(build_model(learner, x.shape[1:], 2), x, y, x[:0], y[:0], 2, learner, 0,
                           str(tmp_path / "l"), checkpoint_path=str(tmp_path / "c.npz"), extra_callbacks=extra)

    with pytest.raises(KeyboardInterrupt):
        run([kill_after(8)])
    pd.read_csv(csv).assign(seconds=1000.0).to_csv(csv, index=False)
    capsys.readouterr()
    run()
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  epoch 10/12")]
    assert len(lines) == 1 and lines[0].endswith("; 1000.0 s an epoch, about 33 min left")
