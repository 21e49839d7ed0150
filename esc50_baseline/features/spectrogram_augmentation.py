"""On-the-fly augmentation of normalized log-mel batches: a steady background, frequency-wise MixStyle,
FilterAugment, time shift, SpecAugment masks, mixup (of log-mel values, or of powers with between-class learning's
gain-aware ratio).

Every random draw is a stateless TensorFlow op keyed by a per-batch seed that depends only on the run's
seed, the epoch and the batch number, so an interrupted and resumed run augments exactly as an
uninterrupted one (and a fixed seed gives the same numbers on a CPU). Each draw adds an offset of its own to
that seed, so that no two steps' draws are correlated (each augmentation's offsets: its `seeds` in AUGMENTATIONS).

AUGMENTATIONS, at the end of this file, is the one place an augmentation is declared: its settings under
learner.augmentation (with the value at which the cache hashes leave a setting out, so that adding it renamed no
cache, and what a usable value is), its function and its seed offsets. A new augmentation is its function and an
entry there, and its settings' defaults in task_esc50.yaml.
"""
from dataclasses import dataclass

from ..validation import at_least, chance, positive, value_range

NOT_NEUTRAL = object()  # a setting the cache hashes always count (it was there before any cache)


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


def _time_shift(x, y, seed, settings, bands):
    import tensorflow as tf
    batch, n_frames = tf.shape(x)[0], tf.shape(x)[2]
    shift = tf.random.stateless_uniform((batch, 1), seed + [0, 3], -settings["time_shift"],
                                        settings["time_shift"] + 1, dtype=tf.int32)
    frames = (tf.range(n_frames)[tf.newaxis, :] - shift) % n_frames  # a circular roll per clip
    return tf.gather(x, frames, axis=2, batch_dims=1), y


def _freq_masks(x, y, seed, settings, bands):
    import tensorflow as tf
    keep = _masks(tf, seed + [1, 0], tf.shape(x)[0], tf.shape(x)[1], settings["freq_masks"],
                  settings["freq_mask_width"])
    return x * keep[:, :, tf.newaxis, tf.newaxis], y


def _time_masks(x, y, seed, settings, bands):
    import tensorflow as tf
    keep = _masks(tf, seed + [2, 0], tf.shape(x)[0], tf.shape(x)[2], settings["time_masks"],
                  settings["time_mask_width"])
    return x * keep[:, tf.newaxis, :, tf.newaxis], y


@dataclass(frozen=True)
class Setting:
    """A setting of an augmentation, under learner.augmentation: its name, the value at which the cache hashes leave
    it out (NOT_NEUTRAL: always counted), and a test of a usable value with what it must be (or the choices)."""
    key: str
    neutral: object = NOT_NEUTRAL
    valid: object = None
    must: str = ""
    choices: tuple = ()


@dataclass(frozen=True)
class Augmentation:
    """An augmentation of normalized log-mel batches: on while the setting of its `name` is (a chance, a count or a
    weight above 0); `apply(x, y, seed, settings, bands)` -> (x, y); `seeds`: the offsets its draws add."""
    name: str
    settings: tuple
    apply: object
    seeds: str


# Every augmentation, in the order a batch goes through them.
AUGMENTATIONS = (
    Augmentation("steady_background", (
        Setting("steady_background", 0.0, chance, "a chance from 0 (off) to 1"),
        Setting("steady_background_snr_db", [10, 30], value_range, "[lowest, highest] in dB, e.g. [10, 30]")),
        lambda x, y, seed, s, bands: (steady_background(x, seed, s["steady_background"],
                                                        s["steady_background_snr_db"], bands), y), "[0, 4..6]"),
    Augmentation("freq_mixstyle", (
        Setting("freq_mixstyle", 0.0, chance, "a chance from 0 (off) to 1"),
        Setting("freq_mixstyle_alpha", 0.3, positive, "above 0, e.g. 0.3")),
        lambda x, y, seed, s, bands: (freq_mixstyle(x, seed, s["freq_mixstyle"], float(s["freq_mixstyle_alpha"])), y),
        "[4, 1..4]"),
    Augmentation("filter_augment", (
        Setting("filter_augment", 0.0, chance, "a chance from 0 (off) to 1"),
        Setting("filter_augment_db", [-6, 6], value_range, "[lowest, highest] gain in dB, e.g. [-6, 6]")),
        lambda x, y, seed, s, bands: (filter_augment(x, seed, s["filter_augment"], s["filter_augment_db"], bands), y),
        "[5, 1..4]"),
    Augmentation("time_shift", (Setting("time_shift", valid=at_least(0), must="0 (off) or more frames"),),
                 _time_shift, "[0, 3]"),
    Augmentation("freq_masks", (Setting("freq_masks", valid=at_least(0), must="0 (off) or more"),
                                Setting("freq_mask_width")), _freq_masks, "[1, 1..2n] for n masks"),
    Augmentation("time_masks", (Setting("time_masks", valid=at_least(0), must="0 (off) or more"),
                                Setting("time_mask_width")), _time_masks, "[2, 1..2n] for n masks"),
    Augmentation("mixup_alpha", (
        Setting("mixup_alpha", valid=at_least(0), must="0 (off) or more"),
        Setting("mixup_kind", "log_mel", choices=("log_mel", "between_class"))),
        lambda x, y, seed, s, bands: mixup(x, y, seed, float(s["mixup_alpha"]), s.get("mixup_kind", "log_mel"), bands),
        "[3, 1..2]"),
)


def enabled(settings):
    return any(settings.get(a.name) for a in AUGMENTATIONS)


def augment(x, y, seed, settings, bands=None):
    """x: (batch, n_mels, n_frames, 1), y: one-hot (batch, classes), seed: int32 (2,); `bands`: the
    normalization's (mean, std) per mel band, needed by the steady background and FilterAugment."""
    for augmentation in AUGMENTATIONS:
        if settings.get(augmentation.name):
            x, y = augmentation.apply(x, y, seed, settings, bands)
    return x, y
