"""Training one fold: tf.data from in-memory features, Adam, the best epoch kept, resumable per epoch.

A fold's training can be killed at any moment and started again: after every epoch one checkpoint file
is written atomically with every model variable (dropout's random state included), the optimizer's
state, the best-epoch keeper's state and the history. Each epoch's shuffling is a function of the seed
and the epoch number only, so a resumed run continues exactly where the interrupted one was: on CPU the
final weights are the same as those of an uninterrupted run.
"""
import json
import math
import os
import sys
import time

import numpy as np

from .. import interrupts
from ..errors import DamagedFile, UserError
from ..results_io import read_arrays, write_arrays, write_csv


def one_hot(indices, n_classes):
    return np.eye(n_classes, dtype=np.float32)[indices]


def epoch_orders(n, seed, first_epoch, epochs, versions=1, labels=None):
    """Row order of every epoch from first_epoch on, a function of (seed, epoch) only. Each epoch is a
    permutation of the n clips, or with `labels` a class-balanced draw of n (every class equally likely).
    With `versions` > 1 each clip is drawn as its original (row i) or one of its augmented copies
    (row i + n * copy)."""
    if labels is not None:
        weights = 1.0 / np.bincount(labels)[labels]
        weights /= weights.sum()
    rows = []
    for e in range(first_epoch, max(epochs, first_epoch + 1)):
        rng = np.random.default_rng([seed, e])
        order = rng.permutation(n) if labels is None else rng.choice(n, n, replace=True, p=weights)
        if versions > 1:
            order = order + n * np.random.default_rng([seed, e, 1]).integers(0, versions, n)
        rows.append(order)
    return np.stack(rows)


def training_batches(x, y, batch_size, orders, seed=0, first_epoch=0, augmentation=None, bands=None):
    """One stream of batches for all remaining epochs (fit keeps its iterator when steps_per_epoch is
    set), augmented on the fly when `augmentation` settings are given. `orders` index the rows of x
    and y. Each batch carries a seed made from (seed, epoch, batch number) for the augmentation's
    random draws. `bands`: the normalization's (mean, std) per mel band (for a steady background, FilterAugment)."""
    import tensorflow as tf
    from ..features import spectrogram_augmentation as aug
    features, targets = tf.constant(x[..., np.newaxis]), tf.constant(y)
    n_batches = -(-orders.shape[1] // batch_size)
    seeds = np.array([[[seed, (first_epoch + e) * n_batches + b] for b in range(n_batches)]
                      for e in range(len(orders))], dtype=np.int32)
    per_epoch = tf.data.Dataset.from_tensor_slices((orders.astype(np.int32), seeds))
    batches = per_epoch.flat_map(lambda order, batch_seeds: tf.data.Dataset.zip(
        (tf.data.Dataset.from_tensor_slices(order).batch(batch_size), tf.data.Dataset.from_tensor_slices(batch_seeds))))
    use = augmentation if augmentation and aug.enabled(augmentation) else None

    def gather(idx, batch_seed):
        xb, yb = tf.gather(features, idx), tf.gather(targets, idx)
        return aug.augment(xb, yb, batch_seed, use, bands) if use else (xb, yb)

    return batches.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


def optimizer(learner, replicas, steps_per_epoch, phase=None):
    """Adam (AdamW with weight decay) for one phase of training (by default all of it), at a constant rate or
    on a cosine schedule over the phase's epochs with linear warm-up; with learner.ema_momentum, it keeps the
    weights' moving average too."""
    import keras
    from .fine_tuning import Phase
    phase = phase or Phase(0, learner["epochs"], learner["learning_rate"], learner["warmup_epochs"], None)
    rate = phase.learning_rate * replicas
    if learner["lr_schedule"] == "cosine":
        warmup = phase.warmup_epochs * steps_per_epoch
        total = max((phase.end - phase.start) * steps_per_epoch - warmup, 1)
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=rate if not warmup else rate * 1e-2, decay_steps=total,
            warmup_target=rate if warmup else None, warmup_steps=warmup)
    options = {"global_clipnorm": learner["gradient_clip_norm"]} if learner["gradient_clip_norm"] else {}
    if learner["ema_momentum"]:  # fit ends by writing the average into the weights (finalize_variable_values)
        options.update(use_ema=True, ema_momentum=learner["ema_momentum"])
    if learner["weight_decay"]:
        inner = keras.optimizers.AdamW(learning_rate=rate, weight_decay=learner["weight_decay"], **options)
    else:
        inner = keras.optimizers.Adam(learning_rate=rate, **options)
    if keras.mixed_precision.global_policy().name == "mixed_bfloat16":
        # Here bfloat16 training of the wider networks now and then produced a non-finite gradient that
        # turned every weight into NaN (cnn3 never did; float32 never did). A loss-scale optimizer skips
        # such a step instead of applying it; at scale 1 it changes nothing else.
        return keras.optimizers.LossScaleOptimizer(inner, initial_scale=1.0)
    return inner


def evaluation_batches(x, y, batch_size):
    import tensorflow as tf
    return tf.data.Dataset.from_tensor_slices((x[..., np.newaxis], y)).batch(batch_size).prefetch(tf.data.AUTOTUNE)


class Checkpoint:
    """The resumable state of one fold's training, in one .npz file."""

    def __init__(self, path):
        self.path = path

    def save(self, model, epoch, history, keeper):
        arrays = {f"model_{i}": np.asarray(v) for i, v in enumerate(model.variables)}
        arrays.update({f"optimizer_{i}": np.asarray(v) for i, v in enumerate(model.optimizer.variables)})
        arrays.update({f"best_{i}": w for i, w in enumerate(keeper.best_weights or [])})
        state = {"epoch": epoch, "history": history, "best": keeper.best, "best_epoch": keeper.best_epoch}
        arrays["state"] = np.array(json.dumps(state))
        write_arrays(self.path, **arrays)

    def epochs_done(self):
        """The epochs the checkpoint holds (0 without one), to know the phase to resume in before restoring."""
        if not os.path.exists(self.path):
            return 0
        try:
            return int(json.loads(str(read_arrays(self.path, required=("state",))["state"]))["epoch"])
        except (DamagedFile, KeyError, ValueError):
            return 0  # restore() names the damage and starts over

    def restore(self, model, keeper, optimizer=True):
        """Load the state into a freshly built, compiled model; returns (epochs done, history). Without
        `optimizer` the optimizer starts afresh (a new phase of training begins where the checkpoint ends)."""
        if not os.path.exists(self.path):
            return 0, {}
        try:  # read (and so CRC-check) every array before assigning any
            arrays = read_arrays(self.path, required=("state",))
        except DamagedFile as e:
            print(f"  {e}; training starts over")
            return 0, {}
        state = json.loads(str(arrays["state"]))
        model.optimizer.build(model.trainable_variables)
        if not self._fits(arrays, model, optimizer):
            print(f"  {self.path} was written by a different model or optimizer; training starts over")
            return 0, {}
        for i, v in enumerate(model.variables):
            v.assign(arrays[f"model_{i}"])
        for i, v in enumerate(model.optimizer.variables if optimizer else []):
            v.assign(arrays[f"optimizer_{i}"])
        best = [arrays[f"best_{i}"] for i in range(len(model.get_weights()))] if "best_0" in arrays else None
        keeper.best, keeper.best_epoch, keeper.best_weights = state["best"], state["best_epoch"], best
        return state["epoch"], state["history"]

    @staticmethod
    def _fits(data, model, optimizer=True):
        """True when the saved arrays have the shapes of this model's (and optimizer's) variables."""
        for prefix, variables in (("model", model.variables),) + ((("optimizer", model.optimizer.variables),)
                                                                   if optimizer else ()):
            saved = [k for k in data if k.startswith(prefix + "_")]
            if len(saved) != len(variables):
                return False
            if any(data[f"{prefix}_{i}"].shape != tuple(v.shape) for i, v in enumerate(variables)):
                return False
        return True

    def remove(self):
        if os.path.exists(self.path):
            os.remove(self.path)


def epoch_seconds(history_path):
    """Each epoch's wall-clock seconds from a fold's history CSV (NaN where unknown: epochs trained before
    the column existed); [] without the file or the column."""
    import pandas as pd
    try:
        table = pd.read_csv(history_path)
    except (OSError, ValueError):
        return []
    return [float(v) for v in table["seconds"]] if "seconds" in table else []


def training_seconds(history_path):
    """(seconds, timed epochs, epochs) of a fold's training, summed over the epochs of its history CSV: the
    time spent in epochs, however many runs a resumed training took, and without the pauses between them."""
    seconds = epoch_seconds(history_path)
    timed = [s for s in seconds if not math.isnan(s)]
    return sum(timed), len(timed), len(seconds)


def epoch_callbacks(monitor, initial_delay, history_path, checkpoint, history, announce_total=None, label="",
                    stream=None, redraw=True):
    """The DCASE stasher (best epoch by `monitor`, counted from `initial_delay`), the history CSV (with each
    epoch's wall-clock seconds), and the per-epoch checkpoint, in that order. With `announce_total` (the
    epochs to train), the fold's progress_line on `stream` (stdout): redrawn in place after every epoch on a
    terminal (unless not `redraw`: Keras prints lines of its own), as a line of its own every tenth of the epochs
    (at least 10) in a log."""
    import keras

    class BestEpochKeeper(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.best, self.best_epoch, self.best_weights = None, None, None
            self.higher_is_better = "acc" in monitor

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(monitor)
            if value is None or epoch + 1 < initial_delay:
                return
            if self.best is None or (value > self.best if self.higher_is_better else value < self.best):
                self.best, self.best_epoch, self.best_weights = float(value), epoch + 1, self.model.get_weights()

        def restore_best(self, model):
            """Called once training has ended (after its last phase, not each phase's fit)."""
            if self.best_weights is not None:
                model.set_weights(self.best_weights)

    class HistoryAndCheckpoint(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self.started = [], 0.0

        def on_train_begin(self, logs=None):
            # a resumed run: the epochs before it keep the times its history CSV holds (the checkpoint's epoch
            # count rules: an epoch written to the CSV but not to the checkpoint is trained again)
            done = len(next(iter(history.values()), []))
            if len(self.seconds) != done:
                known = epoch_seconds(history_path)[:done]
                self.seconds = known + [math.nan] * (done - len(known))

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            if not all(np.isfinite(np.asarray(w)).all() for w in self.model.get_weights()):
                # the weights are NaN from here on: stop rather than train (and checkpoint) garbage
                raise UserError(f"Training diverged in epoch {epoch + 1} (the weights are no longer finite); lower "
                                "learner.learning_rate or set learner.gradient_clip_norm, and run again.")
            for key, value in (logs or {}).items():
                history.setdefault(key, []).append(float(value))
            self.seconds.append(time.monotonic() - self.started)
            keys = sorted(history)
            write_csv(history_path, ["epoch"] + keys + ["seconds"],
                      [[e + 1] + [f"{history[k][e]:.6g}" for k in keys] + [f"{self.seconds[e]:.3f}"]
                       for e in range(len(history[keys[0]]))])
            if epoch + 1 == self.params["epochs"]:
                # what fit does after this epoch (the weights' moving average, if any, replaces them), done first,
                # so that the checkpoint of a finished phase holds the weights that the next phase starts from
                self.model.optimizer.finalize_variable_values(self.model.trainable_variables)
            if checkpoint:
                checkpoint.save(self.model, epoch + 1, history, keeper)
            if announce_total:
                timed = [s for s in self.seconds if not math.isnan(s)]  # a resumed run's earlier epochs count
                progress.show(epoch + 1, progress_line(label, epoch + 1, announce_total, logs or {}, timed))
            interrupts.check()

    progress = EpochProgress(announce_total, stream or sys.stdout, redraw) if announce_total else None
    keeper = BestEpochKeeper()
    return keeper, [keeper, HistoryAndCheckpoint()]


class EpochProgress:
    """One line for a fold's training: redrawn in place on a terminal; in a log, one every tenth of the epochs
    (at least every 10) and at the last."""

    def __init__(self, total, stream, redraw=True):
        self.total, self.stream, self.width = total, stream, 0
        self.tty = redraw and getattr(stream, "isatty", lambda: False)()
        self.every = max(10, total // 10)

    def show(self, done, line):
        last = done == self.total
        if self.tty:
            self.stream.write("\r" + line.ljust(self.width) + ("\n" if last else ""))
            self.width = len(line)
        elif done % self.every == 0 or last:
            self.stream.write(line + "\n")
        self.stream.flush()


def progress_line(label, done, total, logs, seconds):
    """'  Fold 4: epoch 80/200, loss 1.234, accuracy 0.650, val_accuracy 0.612; 29.6 s an epoch, about 59 min left'."""
    figures = ", ".join(f"{key} {logs[key]:.3f}" for key in ("loss", "accuracy", "val_loss", "val_accuracy")
                        if key in logs)
    head = f"  {label + ': ' if label else ''}epoch {done}/{total}" + (f", {figures}" if figures else "")
    return head + "; " + time_left_line(done, total, seconds).split(", ", 1)[1]


def time_left_line(done, total, seconds):
    """What a long training has left, from its latest epochs: 'epoch 80 of 200, 29.6 s an epoch, about 59 min
    left' (`seconds`: the fold's epoch times so far; the median of the last ten, so that one slow epoch moves it little)."""
    from ..evaluation.tables import hours_or_minutes
    per_epoch = float(np.median(seconds[-10:]))
    return (f"  epoch {done} of {total}, {per_epoch:.1f} s an epoch, "
            f"about {hours_or_minutes((total - done) * per_epoch)} left")


def train_fold(model, x_train, y_train, x_val, y_val, n_classes, learner, seed, log_dir, checkpoint_path=None,
               extra_callbacks=(), strategy=None, train_copies=None, teacher=None, normalizer=None, label=""):
    """Fit `model` in place, resuming from `checkpoint_path` when it exists; returns
    (history dict, best epoch or None, monitored value). Under a distribution `strategy` (the model must
    have been built in its scope) learner.batch_size is per replica, and the learning rate scales too.
    `train_copies` (copies, clips, n_mels, n_frames): augmented versions of x_train to draw from.
    `teacher` (training targets, validation targets): a teacher's softened predictions, one row per
    training row (the clips, then each copy's) and per validation clip, for the distillation loss; or a
    distillation.LiveTeacher, which predicts inside the training step (the student trains within its model).
    `normalizer`: the one x_train went through (the steady-background augmentation mixes before it); `label`
    heads the progress line (e.g. 'Fold 4')."""
    import keras
    import tensorflow as tf
    from . import fine_tuning
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    steps_per_epoch = -(-len(x_train) // (learner["batch_size"] * replicas))
    has_val = len(x_val) > 0
    monitor = learner["monitor"]["metric"]
    if monitor != "last" and not has_val:
        monitor = "accuracy"  # no validation clips: the best epoch by training accuracy, as DCASE's stasher
    # "last" is never in the epoch logs, so the keeper keeps nothing and the final weights stay
    checkpoint = Checkpoint(checkpoint_path) if checkpoint_path else None
    history = {}
    os.makedirs(log_dir, exist_ok=True)
    keeper, callbacks = epoch_callbacks(monitor, learner["monitor"]["initial_delay"],
                                        os.path.join(log_dir, "history.csv"), checkpoint, history,
                                        announce_total=learner["epochs"], label=label,
                                        redraw=not learner["verbose"])
    callbacks.append(keras.callbacks.TensorBoard(log_dir=os.path.join(log_dir, "tensorboard"), profile_batch=0))
    versions = 1 if train_copies is None else 1 + len(train_copies)
    if versions > 1:
        x_train = np.concatenate([x_train[np.newaxis], train_copies]).reshape((-1,) + x_train.shape[1:])
    live = hasattr(teacher, "attach")
    trained = model
    if live:
        with strategy.scope():
            trained = teacher.attach(model)
    cached = teacher if teacher is not None and not live else None
    train_targets = targets(np.tile(y_train, versions), n_classes, cached and cached[0])
    val = (evaluation_batches(x_val, targets(y_val, n_classes, cached and cached[1]), learner["batch_size"] * replicas)
           if has_val else None)

    def enter(phase):  # the phase's frozen layers and its own optimizer
        described = phase.apply(model)
        if described:
            print(f"  {described}", flush=True)
        with strategy.scope():
            trained.compile(optimizer=optimizer(learner, replicas, steps_per_epoch, phase),
                            jit_compile=learner["jit_compile"], **loss_and_metrics(learner, n_classes, teacher, live))

    def batches(first_epoch, end):
        orders = epoch_orders(len(y_train), seed, first_epoch, end, versions,
                              np.asarray(y_train) if learner["sampling"] == "balanced" else None)
        return training_batches(x_train, train_targets, learner["batch_size"] * replicas, orders, seed, first_epoch,
                                learner["augmentation"], normalizer and (normalizer.mean, normalizer.std))

    def fit(first_epoch, end):
        trained.fit(batches(first_epoch, end), validation_data=val, epochs=end, initial_epoch=first_epoch,
                    steps_per_epoch=steps_per_epoch, callbacks=callbacks + list(extra_callbacks), shuffle=False,
                    verbose=learner["verbose"])  # the batches are already in each epoch's order

    run_schedule(fine_tuning.phases(learner, model), checkpoint, trained, keeper, history, enter, fit)
    keeper.restore_best(trained)
    if learner["ema_momentum"] and learner["ema_refresh_batch_norm"]:
        # one more epoch's batches, as the training would have drawn them after its last epoch
        epochs = learner["epochs"]
        n = refresh_batch_norm(model, batches(epochs, epochs + 1))
        print(f"  Batch normalization's statistics recomputed for the averaged weights over {n} training batches")
    return history, keeper.best_epoch, keeper.best


def refresh_batch_norm(model, batches):
    """Replace every batch normalization layer's moving statistics (nested models' too) by their plain average
    over `batches` ((features, targets) pairs), computed with the model's present weights; returns the number of
    batches. The weights' moving average (learner.ema_momentum) ends training with weights whose activations the
    statistics kept during training, those of the raw weights, no longer describe. Dropout is off meanwhile: the
    statistics are those the network meets at inference, and they depend on the batches alone (a resumed run
    recomputes the same ones)."""
    import keras
    from ..models.complexity import leaf_layers
    layers = list(leaf_layers(model))
    norms = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
    dropouts = [layer for layer in layers if isinstance(layer, keras.layers.Dropout)]
    momenta, rates = [layer.momentum for layer in norms], [layer.rate for layer in dropouts]
    try:
        for layer in dropouts:
            layer.rate = 0.0
        n = 0
        for n, (features, _targets) in enumerate(batches, start=1):
            for layer in norms:
                layer.momentum = 1.0 - 1.0 / n  # the running mean of the batches' statistics: batch n weighs 1 / n
            model(features, training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
        for layer, rate in zip(dropouts, rates):
            layer.rate = rate
    return n


def run_schedule(schedule, checkpoint, model, keeper, history, enter, fit):
    """Each phase in turn: `enter` it (its frozen layers, its optimizer), then `fit` its epochs. With a
    checkpoint, the phase it was written in goes on from its last epoch; one written at the end of a phase
    carries the weights into the next, whose optimizer starts afresh."""
    done = checkpoint.epochs_done() if checkpoint else 0
    resumed = next((p for p in schedule if p.end > done), schedule[-1]) if done else None
    if resumed:
        enter(resumed)
        done, restored = checkpoint.restore(model, keeper, optimizer=done > resumed.start)
        history.update(restored)
    for phase in schedule:
        if phase.end <= done:
            continue
        if phase is not resumed or not done:  # (a checkpoint that could not be used: every phase anew)
            enter(phase)
        fit(max(done, phase.start), phase.end)


def loss_and_metrics(learner, n_classes, teacher, live=False):
    import keras
    if teacher is None:
        return {"loss": keras.losses.CategoricalCrossentropy(label_smoothing=learner["label_smoothing"]),
                "metrics": ["accuracy"]}
    from . import distillation
    settings = learner["distillation"]
    return {"loss": distillation.DistillationLoss(n_classes, settings["temperature"], settings["weight"],
                                                  learner["label_smoothing"], live),
            "metrics": [distillation.label_accuracy(n_classes)]}


def targets(labels, n_classes, teacher=None):
    """One-hot labels, followed by the teacher's targets when there is a teacher: [labels | teacher]."""
    y = one_hot(labels, n_classes)
    return y if teacher is None else np.concatenate([y, np.asarray(teacher, dtype=np.float32)], axis=1)
