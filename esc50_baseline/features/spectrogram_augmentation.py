"""On-the-fly augmentation of normalized log-mel batches: time shift, SpecAugment masks, mixup.

Every random draw is a stateless TensorFlow op keyed by a per-batch seed that depends only on the run's
seed, the epoch and the batch number, so an interrupted and resumed run augments exactly as an
uninterrupted one (and a fixed seed gives the same numbers on a CPU).
"""


def enabled(settings):
    return bool(settings["time_shift"] or settings["freq_masks"] or settings["time_masks"] or settings["mixup_alpha"])


def _masks(tf, seed, batch, length, count, max_width):
    """(batch, length) float mask: 0 inside `count` random bands of width 0..max_width, 1 elsewhere."""
    keep = tf.ones((batch, length))
    positions = tf.range(length)[tf.newaxis, :]
    for i in range(count):
        width = tf.random.stateless_uniform((batch, 1), seed + [i, 1], 0, max_width + 1, dtype=tf.int32)
        start = tf.random.stateless_uniform((batch, 1), seed + [i, 2], 0, tf.int32.max, dtype=tf.int32) \
            % tf.maximum(length - width + 1, 1)
        inside = (positions >= start) & (positions < start + width)
        keep = keep * (1.0 - tf.cast(inside, tf.float32))
    return keep


def augment(x, y, seed, settings):
    """x: (batch, n_mels, n_frames, 1), y: one-hot (batch, classes), seed: int32 (2,)."""
    import tensorflow as tf
    batch, n_mels, n_frames = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    if settings["time_shift"]:
        shift = tf.random.stateless_uniform((batch, 1), seed + [0, 3], -settings["time_shift"],
                                            settings["time_shift"] + 1, dtype=tf.int32)
        frames = (tf.range(n_frames)[tf.newaxis, :] - shift) % n_frames  # a circular roll per clip
        x = tf.gather(x, frames, axis=2, batch_dims=1)
    if settings["freq_masks"]:
        keep = _masks(tf, seed + [1, 0], batch, n_mels, settings["freq_masks"], settings["freq_mask_width"])
        x = x * keep[:, :, tf.newaxis, tf.newaxis]
    if settings["time_masks"]:
        keep = _masks(tf, seed + [2, 0], batch, n_frames, settings["time_masks"], settings["time_mask_width"])
        x = x * keep[:, tf.newaxis, :, tf.newaxis]
    if settings["mixup_alpha"]:
        alpha = float(settings["mixup_alpha"])
        a = tf.random.stateless_gamma((batch,), seed + [3, 1], alpha=alpha)
        b = tf.random.stateless_gamma((batch,), seed + [3, 2], alpha=alpha)
        lam = a / (a + b)
        partner = tf.reverse(tf.range(batch), axis=[0])  # the batch is already in a random order
        x = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * tf.gather(x, partner)
        y = lam[:, None] * y + (1 - lam[:, None]) * tf.gather(y, partner)
    return x, y
