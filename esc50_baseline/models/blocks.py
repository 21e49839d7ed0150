"""Building blocks shared by the model families: pools that adapt to the input, conv-BN-ReLU, the global pooling
head, the classifier.

`L` is keras.layers; every function takes a tensor and returns the next one (the functional API).
"""


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
