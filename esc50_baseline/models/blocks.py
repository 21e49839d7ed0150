"""Building blocks shared by the model families: the delta channels, pools that adapt to the input, conv-BN-ReLU,
the global pooling head, the classifier.

`L` is keras.layers; every function takes a tensor and returns the next one (the functional API).
"""
import numpy as np


def delta_channels(L, x, name="delta_channels"):
    """(batch, freq, time, 1) to (batch, freq, time, 3): the log-mel, its delta and its delta-delta, by a fixed
    (untrained) convolution over 9 frames: the HTK regression over +-2 frames, applied once and twice, each kernel
    scaled to unit norm so that the three channels have comparable ranges. Inside the model, so that augmented
    batches, TFLite files and predictions all get them, at 27 multiply-adds a time-frequency bin."""
    delta = np.array([-2, -1, 0, 1, 2], np.float32) / 10
    kernels = [np.eye(1, 9, 4)[0], np.pad(delta, 2), np.convolve(delta, delta)]
    kernel = np.stack([k / np.linalg.norm(k) for k in kernels], axis=-1).reshape(1, 9, 1, 3).astype(np.float32)
    layer = L.Conv2D(3, (1, 9), padding="same", use_bias=False, trainable=False, name=name)
    y = layer(x)
    layer.set_weights([kernel])
    return y


def adapt_pool(pool_size, remaining):
    """Clamp a 2-D pool to the remaining (freq, time) extent; None means all of it."""
    if isinstance(pool_size, int):
        pool_size = [pool_size, pool_size]
    return tuple(int(r) if p is None else max(1, min(int(p), int(r))) for p, r in zip(pool_size, remaining))


def conv_bn_relu(L, x, filters, kernel=3, strides=1):
    x = L.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    x = L.BatchNormalization()(x)
    return L.Activation("relu")(x)


def max_pool(L, x, size):
    return L.MaxPooling2D(adapt_pool(size, x.shape[1:3]))(x)


POOLINGS = ("average", "max", "mean_max")


def global_pool(L, x, pooling=None):
    """(batch, freq, time, channels) to (batch, channels). `mean_max` is PANNs' head: the mean over frequency, then
    the maximum plus the mean over time, so that a short sound in a quiet clip is not averaged away with the quiet
    while the mean still hears a sound that lasts."""
    if pooling == "max":
        return L.GlobalMaxPooling2D()(x)
    if pooling == "mean_max":
        x = L.AveragePooling2D((x.shape[1], 1))(x)
        return L.Add()([L.GlobalMaxPooling2D()(x), L.GlobalAveragePooling2D()(x)])
    return L.GlobalAveragePooling2D()(x)


def classifier(L, x, n_classes, dropout):
    if dropout:
        x = L.Dropout(dropout)(x)
    return L.Dense(n_classes, activation="softmax", dtype="float32", name="classes")(x)
