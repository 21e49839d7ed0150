"""Training one fold: tf.data from in-memory features, Adam, the best epoch kept, logs per fold."""
import os
import tempfile

import numpy as np


def one_hot(indices, n_classes):
    return np.eye(n_classes, dtype=np.float32)[indices]


def make_dataset(x, y, batch_size, shuffle, seed):
    import tensorflow as tf
    ds = tf.data.Dataset.from_tensor_slices((x[..., np.newaxis], y))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def best_epoch_keeper(monitor, initial_delay):
    """The DCASE stasher: remember the weights of the best epoch by `monitor`, counting only from
    `initial_delay` on; restore them when training ends (the last epoch if none qualified)."""
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
            better = self.best is None or (value > self.best if self.higher_is_better else value < self.best)
            if better:
                self.best, self.best_epoch, self.best_weights = value, epoch + 1, self.model.get_weights()

        def on_train_end(self, logs=None):
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    return BestEpochKeeper()


def train_fold(model, x_train, y_train, x_val, y_val, n_classes, learner, seed, log_dir, extra_callbacks=()):
    """Fit `model` in place; returns (history dict, best epoch or None, monitored value)."""
    import keras
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learner["learning_rate"]),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    train = make_dataset(x_train, one_hot(y_train, n_classes), learner["batch_size"], True, seed)
    has_val = len(x_val) > 0
    val = make_dataset(x_val, one_hot(y_val, n_classes), learner["batch_size"], False, seed) if has_val else None
    monitor = learner["monitor"]["metric"] if has_val else "accuracy"
    keeper = best_epoch_keeper(monitor, learner["monitor"]["initial_delay"])
    os.makedirs(log_dir, exist_ok=True)
    callbacks = [keeper, keras.callbacks.CSVLogger(os.path.join(log_dir, "history.csv")),
                 keras.callbacks.TensorBoard(log_dir=os.path.join(log_dir, "tensorboard"), profile_batch=0),
                 *extra_callbacks]
    history = model.fit(train, validation_data=val, epochs=learner["epochs"], callbacks=callbacks,
                        shuffle=False, verbose=learner["verbose"])  # the tf.data pipeline shuffles
    return history.history, keeper.best_epoch, keeper.best


def save_model_atomic(model, path):
    """Keras insists on a .keras suffix, so the temporary file gets one too before the rename."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".keras")
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def predict(model, x, batch_size=64):
    """Class probabilities (float64) for features (clips, n_mels, n_frames), in plain batches."""
    out = [np.asarray(model(x[i:i + batch_size, ..., np.newaxis], training=False), dtype=np.float64)
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, model.output_shape[-1]))
