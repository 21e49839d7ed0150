"""On-the-fly augmentation of normalized log-mel batches: a steady background, frequency-wise MixStyle,
FilterAugment, time shift, SpecAugment masks, mixup (of log-mel values, or of powers with between-class learning's
gain-aware ratio).

Every random draw is a stateless TensorFlow op keyed by a per-batch seed that depends only on the run's
seed, the epoch and the batch number, so an interrupted and resumed run augments exactly as an
uninterrupted one (and a fixed seed gives the same numbers on a CPU). Each draw adds an offset of its own to
that seed, so that no two steps' draws are correlated: the time shift [0, 3], the steady background [0, 4..6],
the n frequency masks [1, 1..2n], the n time masks [2, 1..2n], mixup [3, 1..2], MixStyle [4, 1..4],
FilterAugment [5, 1..4].
"""


def enabled(settings):
    return bool(settings["time_shift"] or settings["freq_masks"] or settings["time_masks"] or settings["mixup_alpha"]
                or settings.get("steady_background") or settings.get("freq_mixstyle")
                or settings.get("filter_augment"))


# A mel band of steady noise fluctuates from frame to frame; its power drawn from a gamma distribution of
# this shape (mean 1, standard deviation 0.5) stands in for the few to many FFT bins a band sums.
_FLUCTUATION_SHAPE = 4.0


def _band_statistics(tf, bands, what):
    """The normalization's (mean, std) per mel band, shaped to broadcast over (batch, mels, frames, 1)."""
    if bands is None:
        raise ValueError(f"{what} mixes before the normalization: pass its bands (train_fold's normalizer)")
    return (tf.constant(bands[0], tf.float32)[tf.newaxis, :, tf.newaxis, tf.newaxis],
            tf.constant(bands[1], tf.float32)[tf.newaxis, :, tf.newaxis, tf.newaxis])


def steady_background(x, seed, probability, snr_db, bands):
    """Each clip of a normalized log-mel batch x, with chance `probability`, over a steady background: the
    long-term power spectrum of the next clip in the batch, at a level `snr_db` (drawn from the range) under the
    clip's mean power, fluctuating from frame to frame as noise does. The powers add, as those of unrelated
    sounds do. `bands`: the normalization's (mean, std) per mel band, to go back to log-mel magnitudes."""
    import tensorflow as tf
    mean, std = _band_statistics(tf, bands, "the steady background")
    batch = tf.shape(x)[0]
    power = tf.exp(2.0 * (x * std + mean))
    spectrum = tf.reduce_mean(tf.roll(power, 1, axis=0), axis=2, keepdims=True)
    snr = tf.random.stateless_uniform((batch, 1, 1, 1), seed + [0, 4], snr_db[0], snr_db[1])
    level = tf.reduce_mean(power, axis=[1, 2, 3], keepdims=True) / 10.0 ** (snr / 10.0)
    background = spectrum * level / tf.reduce_mean(spectrum, axis=[1, 2, 3], keepdims=True)
    background *= tf.random.stateless_gamma(tf.shape(x), seed + [0, 5], alpha=_FLUCTUATION_SHAPE) / _FLUCTUATION_SHAPE
    chosen = tf.random.stateless_uniform((batch, 1, 1, 1), seed + [0, 6]) < probability
    mixed = (0.5 * tf.math.log(power + background) - mean) / std
    return tf.where(chosen, mixed, x)


def freq_mixstyle(x, seed, probability, alpha, eps=1e-6):
    """Frequency-wise MixStyle (as in CPJKU's CP-Mobile): each clip of x, with chance `probability`, keeps its
    shape over time in every mel band, but takes band means and standard deviations mixed from its own and
    another clip's, by a weight drawn from Beta(alpha, alpha): the same sound through another frequency response,
    as another microphone or room would give it."""
    import tensorflow as tf
    batch = tf.shape(x)[0]
    mean = tf.reduce_mean(x, axis=[2, 3], keepdims=True)
    std = tf.sqrt(tf.math.reduce_variance(x, axis=[2, 3], keepdims=True) + eps)
    a = tf.random.stateless_gamma((batch, 1, 1, 1), seed + [4, 1], alpha=alpha)
    b = tf.random.stateless_gamma((batch, 1, 1, 1), seed + [4, 2], alpha=alpha)
    lam = a / (a + b)
    partner = tf.random.experimental.stateless_shuffle(tf.range(batch), seed + [4, 3])
    mixed = (x - mean) / std * (lam * std + (1 - lam) * tf.gather(std, partner)) \
        + lam * mean + (1 - lam) * tf.gather(mean, partner)
    chosen = tf.random.stateless_uniform((batch, 1, 1, 1), seed + [4, 4]) < probability
    return tf.where(chosen, mixed, x)


# FilterAugment's linear kind as Nam et al. (ICASSP 2022) use it: 3 to 5 bands of at least 6 mel bands each
_FILTER_BANDS, _FILTER_MIN_WIDTH = (3, 5), 6


def gain_curve(tf, edges, knots_db, n_mels):
    """(batch, n_mels) gains in dB, linear within each band from the knot at its lowest mel band to the next knot at
    its highest: edges (batch, n + 1) with edges[:, 0] = 0 and edges[:, n] = n_mels, knots_db (batch, n + 1)."""
    mel = tf.range(n_mels)[tf.newaxis, :]
    band = tf.reduce_sum(tf.cast(mel[:, :, tf.newaxis] >= edges[:, tf.newaxis, 1:-1], tf.int32), axis=2)
    low, high = tf.gather(edges, band, batch_dims=1), tf.gather(edges, band + 1, batch_dims=1)
    share = tf.cast(mel - low, tf.float32) / tf.cast(tf.maximum(high - low - 1, 1), tf.float32)
    start, end = tf.gather(knots_db, band, batch_dims=1), tf.gather(knots_db, band + 1, batch_dims=1)
    return start + (end - start) * share


def filter_augment(x, seed, probability, db_range, bands):
    """FilterAugment (Nam et al. 2022): each clip of x, with chance `probability`, through a random filter: the mel
    axis cut into 3 to 5 bands (the count drawn per batch, the edges per clip, each band at least 6 mel bands wide
    where there are enough), a gain drawn from `db_range` at every band edge, linear in dB in between; as another
    microphone, wall or distance would colour the sound. `bands`: the normalization's (mean, std) per mel band, to
    turn the dB of the magnitude into normalized log-mel units."""
    import tensorflow as tf
    _mean, std = _band_statistics(tf, bands, "FilterAugment")
    batch, n_mels = tf.shape(x)[0], tf.shape(x)[1]
    count = tf.random.stateless_uniform((), seed + [5, 1], _FILTER_BANDS[0], _FILTER_BANDS[1] + 1, dtype=tf.int32)
    width = tf.minimum(_FILTER_MIN_WIDTH, n_mels // count)
    starts = tf.random.stateless_uniform((batch, count - 1), seed + [5, 2], 0, n_mels - count * width + 1,
                                         dtype=tf.int32)  # the free room, shared out by the sorted draws
    inner = tf.sort(starts, axis=1) + tf.range(1, count)[tf.newaxis, :] * width
    edges = tf.concat([tf.zeros((batch, 1), tf.int32), inner, tf.fill((batch, 1), n_mels)], axis=1)
    knots = tf.random.stateless_uniform((batch, count + 1), seed + [5, 3], db_range[0], db_range[1])
    log_gain = gain_curve(tf, edges, knots, n_mels) * (tf.math.log(10.0) / 20.0)  # dB to natural log of magnitude
    filtered = x + log_gain[:, :, tf.newaxis, tf.newaxis] / std
    chosen = tf.random.stateless_uniform((batch, 1, 1, 1), seed + [5, 4]) < probability
    return tf.where(chosen, filtered, x)


def _masks(tf, seed, batch, length, count, max_width):
    """(batch, length) float mask: 0 inside `count` random bands of width 0..max_width, 1 elsewhere."""
    keep = tf.ones((batch, length))
    positions = tf.range(length)[tf.newaxis, :]
    for i in range(count):
        width = tf.random.stateless_uniform((batch, 1), seed + [0, 2 * i + 1], 0, max_width + 1, dtype=tf.int32)
        start = tf.random.stateless_uniform((batch, 1), seed + [0, 2 * i + 2], 0, tf.int32.max, dtype=tf.int32) \
            % tf.maximum(length - width + 1, 1)
        inside = (positions >= start) & (positions < start + width)
        keep = keep * (1.0 - tf.cast(inside, tf.float32))
    return keep


def augment(x, y, seed, settings, bands=None):
    """x: (batch, n_mels, n_frames, 1), y: one-hot (batch, classes), seed: int32 (2,); `bands`: the
    normalization's (mean, std) per mel band, needed by the steady background and FilterAugment."""
    import tensorflow as tf
    batch, n_mels, n_frames = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    if settings.get("steady_background"):
        x = steady_background(x, seed, settings["steady_background"], settings["steady_background_snr_db"], bands)
    if settings.get("freq_mixstyle"):
        x = freq_mixstyle(x, seed, settings["freq_mixstyle"], float(settings["freq_mixstyle_alpha"]))
    if settings.get("filter_augment"):
        x = filter_augment(x, seed, settings["filter_augment"], settings["filter_augment_db"], bands)
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
        x, y = mixup(x, y, seed, float(settings["mixup_alpha"]), settings.get("mixup_kind", "log_mel"), bands)
    return x, y


def mixup(x, y, seed, alpha, kind="log_mel", bands=None):
    """Each clip mixed with its partner in the batch (the batch is already in a random order, so the reversed
    batch), labels by a weight r from Beta(alpha, alpha). `log_mel`: the normalized log-mel values mixed by r.
    `between_class` (Tokozume et al.'s between-class learning, on powers instead of waveforms): the two clips'
    powers add, as two sounds' do, scaled so that r is the share one hears: the waveform ratio p comes from r
    and the clips' gains (their loudest frames' power in dB), p = 1 / (1 + 10^((g1 - g2) / 20) (1 - r) / r),
    and the mix is (p^2 P1 + (1 - p)^2 P2) / (p^2 + (1 - p)^2)."""
    import tensorflow as tf
    batch = tf.shape(x)[0]
    a = tf.random.stateless_gamma((batch,), seed + [3, 1], alpha=alpha)
    b = tf.random.stateless_gamma((batch,), seed + [3, 2], alpha=alpha)
    r = a / (a + b)
    partner = tf.reverse(tf.range(batch), axis=[0])
    y = r[:, None] * y + (1 - r[:, None]) * tf.gather(y, partner)
    r = r[:, None, None, None]
    if kind == "log_mel":
        return r * x + (1 - r) * tf.gather(x, partner), y
    mean, std = _band_statistics(tf, bands, "between-class mixup")
    power = tf.exp(2.0 * (x * std + mean))
    gain_db = 10.0 * _log10(tf, tf.reduce_max(tf.reduce_mean(power, axis=[1, 3], keepdims=True), axis=2,
                                              keepdims=True))
    louder_db = tf.clip_by_value(gain_db - tf.gather(gain_db, partner), -200.0, 200.0)  # no overflow past silence
    p = r / (r + 10.0 ** (louder_db / 20.0) * (1 - r))
    mixed = (p ** 2 * power + (1 - p) ** 2 * tf.gather(power, partner)) / (p ** 2 + (1 - p) ** 2)
    return (0.5 * tf.math.log(mixed) - mean) / std, y


def _log10(tf, value):
    return tf.math.log(value) / tf.math.log(10.0)
