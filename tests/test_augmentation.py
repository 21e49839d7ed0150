import numpy as np
import pytest

from esc50_baseline import runtime  # noqa: F401
from esc50_baseline.features.spectrogram_augmentation import augment, enabled

OFF = {"time_shift": 0, "freq_masks": 0, "freq_mask_width": 8, "time_masks": 0, "time_mask_width": 25,
       "mixup_alpha": 0.0}


def batch(n=16, mels=12, frames=30):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, mels, frames, 1)).astype(np.float32) + 5.0  # no zeros of its own
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]
    return x, y


def run(settings, seed=(1, 2)):
    x, y = batch()
    ax, ay = augment(x, y, np.array(seed, np.int32), dict(OFF, **settings))
    return x, y, np.asarray(ax), np.asarray(ay)


def test_time_shift_rolls_each_clip_by_its_own_amount_within_the_bound():
    x, y = batch(n=64)
    ax, ay = (np.asarray(a) for a in augment(x, y, np.array((1, 2), np.int32), dict(OFF, time_shift=4)))
    shifts = []
    for original, shifted in zip(x, ax):
        matches = [s for s in range(-6, 7) if np.array_equal(np.roll(original, s, axis=1), shifted)]
        assert len(matches) == 1
        shifts += matches
    assert set(shifts) == set(range(-4, 5))  # 64 draws: every shift from -4 to 4 occurs, none beyond
    np.testing.assert_array_equal(ay, y)


def masked(clip):
    """(rows, columns) that are zero across the whole clip."""
    return np.where((clip == 0).all(axis=1))[0], np.where((clip == 0).all(axis=0))[0]


def runs_of(indices):
    """Lengths of the runs of consecutive indices."""
    return [len(run) for run in np.split(indices, np.where(np.diff(indices) != 1)[0] + 1) if len(run)]


@pytest.mark.parametrize("axis", ["freq", "time"])
def test_each_mask_kind_zeroes_whole_bands_of_its_own_axis_no_wider_than_allowed(axis):
    width = 3 if axis == "freq" else 5
    x, _, ax, _ = run({f"{axis}_masks": 1, f"{axis}_mask_width": width})
    widths = []
    for clip in ax[..., 0]:
        rows, cols = masked(clip)
        bands, other = (rows, cols) if axis == "freq" else (cols, rows)
        assert len(other) == 0  # the other axis is untouched
        assert len(runs_of(bands)) <= 1 and len(bands) <= width  # one contiguous band
        untouched = np.ix_(np.setdiff1d(np.arange(12), rows), np.setdiff1d(np.arange(30), cols))
        assert (clip[untouched] != 0).all()  # only whole bands are masked
        widths.append(len(bands))
    assert max(widths) > 0 and len(set(widths)) > 1  # widths are drawn per clip


def test_mask_widths_and_positions_are_uniform():
    """One mask of up to 3 bands over 12: each width 0..3 equally likely, and a band of width 3 starts at
    each of the 10 positions where it fits, equally likely (4000 draws)."""
    import tensorflow as tf
    from esc50_baseline.features.spectrogram_augmentation import _masks
    keep = _masks(tf, tf.constant([5, 6]), 4000, 12, 1, 3).numpy()
    widths = (keep == 0).sum(axis=1)
    for width in range(4):
        assert abs(np.mean(widths == width) - 0.25) < 0.04
    starts = (keep[widths == 3] == 0).argmax(axis=1)
    for start in range(10):
        assert abs(np.mean(starts == start) - 0.1) < 0.04


def test_enabled_is_true_when_any_augmentation_is_on():
    assert not enabled(OFF)
    for key in ("time_shift", "freq_masks", "time_masks", "mixup_alpha"):
        assert enabled(dict(OFF, **{key: 1}))


def test_two_masks_of_both_kinds_stay_within_their_total_width():
    x, _, ax, _ = run({"freq_masks": 2, "freq_mask_width": 3, "time_masks": 2, "time_mask_width": 5})
    for clip in ax[..., 0]:
        rows, cols = masked(clip)
        assert len(rows) <= 2 * 3 and len(cols) <= 2 * 5 and len(runs_of(rows)) <= 2 and len(runs_of(cols)) <= 2
    assert any(len(masked(c)[0]) for c in ax[..., 0]) and any(len(masked(c)[1]) for c in ax[..., 0])


def test_mixup_mixes_inputs_and_labels_alike():
    x, y, ax, ay = run({"mixup_alpha": 0.4})
    np.testing.assert_allclose(ay.sum(axis=1), 1.0, rtol=1e-6)
    partner = x[::-1]
    lams = []
    for i in range(len(x)):
        # x_i = lam * x_i + (1 - lam) * x_partner: recover lam from one value, check it everywhere
        lam = (ax[i, 0, 0, 0] - partner[i, 0, 0, 0]) / (x[i, 0, 0, 0] - partner[i, 0, 0, 0])
        np.testing.assert_allclose(ax[i], lam * x[i] + (1 - lam) * partner[i], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(ay[i], lam * y[i] + (1 - lam) * y[::-1][i], rtol=1e-4, atol=1e-4)
        lams.append(lam)
    lams = np.array(lams)
    # Beta(0.4, 0.4) weights: in [0, 1], one per clip, and most clips really mixed
    assert (lams >= -1e-4).all() and (lams <= 1 + 1e-4).all()
    assert np.mean((lams > 0.02) & (lams < 0.98)) >= 0.5 and np.ptp(lams) > 0.3


def test_same_seed_same_augmentation():
    settings = {"time_shift": 3, "freq_masks": 1, "time_masks": 1, "mixup_alpha": 0.2}
    first, second, other = run(settings, (7, 1))[2], run(settings, (7, 1))[2], run(settings, (7, 2))[2]
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


def test_every_draw_takes_a_seed_of_its_own(monkeypatch):
    # Two draws from one stateless seed are the same numbers: a second frequency mask as wide as the first
    # time mask, mixup's weights tied to a mask. Record the seed of every draw of a full recipe.
    import tensorflow as tf
    seeds = []
    for name in ("stateless_uniform", "stateless_gamma"):
        def record(shape, seed, *args, _draw=getattr(tf.random, name), **kwargs):
            seeds.append(tuple(np.asarray(seed).tolist()))
            return _draw(shape, seed, *args, **kwargs)
        monkeypatch.setattr(tf.random, name, record)
    x, y = batch()
    settings = dict(OFF, time_shift=3, freq_masks=3, time_masks=3, mixup_alpha=0.4, steady_background=0.5,
                    steady_background_snr_db=[10, 30], freq_mixstyle=0.5, freq_mixstyle_alpha=0.3,
                    filter_augment=0.5, filter_augment_db=[-6, 6])
    augment(x, y, np.array((5, 6), np.int32), settings, (np.zeros(12, np.float32), np.ones(12, np.float32)))
    assert len(seeds) == 1 + 3 + 2 * 3 + 2 * 3 + 2 + 3 + 4 and len(set(seeds)) == len(seeds)


def test_cosine_schedule_with_warmup():
    import yaml
    from conftest import ROOT
    from esc50_baseline.training.trainer import optimizer
    learner = yaml.safe_load(open(f"{ROOT}/task_esc50.yaml"))["defaults"]["learner"]
    learner = dict(learner, lr_schedule="cosine", warmup_epochs=2, epochs=10, learning_rate=0.01, weight_decay=1e-4)
    opt = optimizer(learner, replicas=1, steps_per_epoch=5)
    schedule = opt.learning_rate if callable(opt.learning_rate) else opt._learning_rate
    rates = [float(schedule(step)) for step in (0, 10, 50)]
    assert rates[0] < 0.001 and abs(rates[1] - 0.01) < 1e-6 and rates[2] < 1e-6
    assert type(opt).__name__ == "AdamW" and opt.global_clipnorm is None
    assert optimizer(dict(learner, gradient_clip_norm=5.0), replicas=1, steps_per_epoch=5).global_clipnorm == 5.0


def steady(x, probability, snr_db, seed=(3, 4)):
    """The steady background on raw log-mel magnitudes x (batch, mels, frames, 1), normalized and back."""
    from esc50_baseline.features.spectrogram_augmentation import steady_background
    mean, std = x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3))
    shape = (1, -1, 1, 1)
    out = steady_background((x - mean.reshape(shape)) / std.reshape(shape), np.array(seed, np.int32), probability,
                            snr_db, (mean, std))
    return np.asarray(out) * std.reshape(shape) + mean.reshape(shape)


def clips_with_silence(n=6, mels=8, frames=400):
    """Log-mel magnitudes of clips whose second half is digital silence, each with its own spectral tilt."""
    rng = np.random.default_rng(1)
    tilt = rng.normal(size=(n, mels, 1, 1)) * 2
    x = (rng.normal(size=(n, mels, frames, 1)) * 0.5 + tilt).astype(np.float32)
    x[:, :, frames // 2:] = np.log(np.finfo(np.float32).eps)
    return x


def test_the_steady_background_adds_the_next_clips_long_term_spectrum_at_the_drawn_level():
    x = clips_with_silence()
    out = steady(x, 1.0, [20, 20])
    power, mixed = np.exp(2.0 * x.astype(np.float64)), np.exp(2.0 * out.astype(np.float64))
    added = mixed - power
    assert (added[:, :, 200:] > 0).all()  # powers add: the silence is filled
    assert (added[:, :, :200] > -1e-4 * power[:, :, :200]).all()  # and nothing lost where the clip sounds
    # its level: 20 dB under the clip's mean power (gamma fluctuation with mean 1, 3200 values a clip)
    snr = 10 * np.log10(power.mean(axis=(1, 2, 3)) / added.mean(axis=(1, 2, 3)))
    np.testing.assert_allclose(snr, 20.0, atol=0.3)
    # its shape: the long-term power spectrum of the next clip of the batch (circularly), not its own
    # (in the silent half, where float32 keeps all of it)
    shape = added[:, :, 200:].mean(axis=2)[..., 0] / added[:, :, 200:].mean(axis=(1, 2))
    partner = np.roll(power, 1, axis=0).mean(axis=2)[..., 0]
    np.testing.assert_allclose(shape, partner / partner.mean(axis=1, keepdims=True), rtol=0.15)
    # steady, but fluctuating from frame to frame as noise does (gamma of shape 4: standard deviation 0.5)
    silent = added[:, :, 200:, 0] / added[:, :, 200:, 0].mean(axis=2, keepdims=True)
    assert 0.4 < silent.std() < 0.6


def test_the_steady_background_is_drawn_per_clip_with_its_chance_and_its_level_within_the_range():
    x = clips_with_silence(n=200, mels=4, frames=40)
    out = steady(x, 0.5, [10, 30])
    touched = ~np.isclose(out, x, atol=1e-4).all(axis=(1, 2, 3))
    assert 70 < touched.sum() < 130  # chance 0.5 for each of 200 clips
    np.testing.assert_allclose(out[~touched], x[~touched], atol=1e-4)  # the others unchanged
    power = np.exp(2.0 * x[touched].astype(np.float64))
    added = np.exp(2.0 * out[touched].astype(np.float64)) - power
    snr = 10 * np.log10(power.mean(axis=(1, 2, 3)) / added.mean(axis=(1, 2, 3)))
    assert snr.min() > 9 and snr.max() < 31 and snr.min() < 14 and snr.max() > 26
    assert np.isclose(steady(x, 0.0, [10, 30]), x, atol=1e-4).all()


def test_the_steady_background_is_seeded_and_part_of_augment():
    x, y = batch()
    settings = dict(OFF, steady_background=1.0, steady_background_snr_db=[15, 25])
    assert enabled(settings)
    bands = (np.zeros(12, np.float32), np.ones(12, np.float32))
    first, again, other = (np.asarray(augment(x, y, np.array(s, np.int32), settings, bands)[0])
                           for s in ((5, 6), (5, 6), (5, 7)))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other) and (first > x).all()  # log(power + background) > log(power)


def clips_with_their_own_bands(n=64, mels=10, frames=50):
    """Clips whose mel bands each have a level and a spread of their own, different from clip to clip."""
    rng = np.random.default_rng(3)
    shape = rng.normal(size=(n, mels, frames, 1))
    return (shape * rng.uniform(0.2, 2.0, (n, mels, 1, 1)) + rng.normal(0, 3, (n, mels, 1, 1))).astype(np.float32)


def band_stats(x):
    return x.mean(axis=(2, 3)), x.std(axis=(2, 3))


def test_freq_mixstyle_gives_a_clip_band_statistics_mixed_with_another_clips_and_keeps_its_shape():
    from esc50_baseline.features.spectrogram_augmentation import freq_mixstyle
    x = clips_with_their_own_bands()
    out = np.asarray(freq_mixstyle(x, np.array((4, 2), np.int32), 1.0, 0.3))
    mean, std = band_stats(x.astype(np.float64))
    out_mean, out_std = band_stats(out.astype(np.float64))
    lams, partners = [], []
    for i in range(len(x)):
        # the one weight and the one other clip that explain both the means and the deviations of all 10 bands
        fits = []
        for j in range(len(x)):
            dm = mean[i] - mean[j]
            lam = 1.0 if not dm.any() else float(np.dot(out_mean[i] - mean[j], dm) / np.dot(dm, dm))
            error = max(np.abs(lam * mean[i] + (1 - lam) * mean[j] - out_mean[i]).max(),
                        np.abs(lam * std[i] + (1 - lam) * std[j] - out_std[i]).max())
            fits.append((error, lam, j))
        error, lam, j = min(fits)
        assert error < 1e-3 and -1e-4 <= lam <= 1 + 1e-4
        lams.append(lam)
        partners.append(j)
        # within each band the clip's course over time is its own
        np.testing.assert_allclose((out[i] - out_mean[i][:, None, None]) / out_std[i][:, None, None],
                                   (x[i] - mean[i][:, None, None]) / std[i][:, None, None], atol=1e-3)
    lams = np.array(lams)
    assert np.mean((lams > 0.05) & (lams < 0.95)) > 0.3 and np.mean(lams < 0.5) > 0.2  # Beta(0.3, 0.3) weights
    offsets = {(i - j) % len(x) for i, (j, lam) in enumerate(zip(partners, lams)) if 0.05 < lam < 0.95}
    assert len(offsets) > 5  # partners drawn across the batch, not a fixed neighbour


def test_freq_mixstyle_touches_clips_with_its_chance_and_is_seeded_and_part_of_augment():
    from esc50_baseline.features.spectrogram_augmentation import freq_mixstyle
    x = clips_with_their_own_bands(n=200)
    out = np.asarray(freq_mixstyle(x, np.array((1, 1), np.int32), 0.5, 0.3))
    touched = ~np.isclose(out, x, atol=1e-4).all(axis=(1, 2, 3))
    assert 70 < touched.sum() < 130
    np.testing.assert_array_equal(out[~touched], x[~touched])
    np.testing.assert_array_equal(np.asarray(freq_mixstyle(x, np.array((1, 1), np.int32), 0.0, 0.3)), x)
    settings = dict(OFF, freq_mixstyle=1.0, freq_mixstyle_alpha=0.3)
    assert enabled(settings) and not enabled(dict(OFF, freq_mixstyle=0.0, freq_mixstyle_alpha=0.3))
    y = np.eye(3, dtype=np.float32)[np.arange(200) % 3]
    first, again, other = (np.asarray(augment(x, y, np.array(s, np.int32), settings)[0])
                           for s in ((5, 6), (5, 6), (5, 7)))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_the_filter_gain_is_linear_in_db_within_each_band_from_knot_to_knot():
    import tensorflow as tf
    from esc50_baseline.features.spectrogram_augmentation import gain_curve
    edges, knots = np.array([[0, 10, 25, 40], [0, 6, 7, 40]]), np.array([[0, 6, -6, 3], [1, 2, 5, -1]], np.float32)
    curve = np.asarray(gain_curve(tf, tf.constant(edges, tf.int32), tf.constant(knots), 40))
    expected = [np.concatenate([np.linspace(k[i], k[i + 1], e[i + 1] - e[i]) for i in range(3)])
                for e, k in zip(edges, knots)]  # a one-band-wide band keeps its lower knot
    np.testing.assert_allclose(curve, np.stack(expected), atol=1e-5)


def filter_bands_of(curve):
    """The bands of a drawn gain curve (n_mels,): each ends where the next starts at the same knot value."""
    starts = np.where(np.isclose(np.diff(curve), 0, atol=1e-5))[0] + 1
    return np.split(np.arange(len(curve)), starts)


def test_filter_augment_colours_each_clip_by_a_random_piecewise_linear_filter_in_db():
    from esc50_baseline.features.spectrogram_augmentation import filter_augment
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 40, 20, 1)).astype(np.float32)
    std = rng.uniform(0.5, 3.0, 40).astype(np.float32)
    counts = set()
    for seed in range(6):
        out = np.asarray(filter_augment(x, np.array((seed, 9), np.int32), 1.0, [-6, 6], (np.zeros(40), std)))
        change = out - x
        np.testing.assert_allclose(change, np.broadcast_to(change[:, :, :1], change.shape), atol=1e-5)  # every frame
        gain_db = change[:, :, 0, 0] * std * 20 / np.log(10)  # back from normalized units to dB of magnitude
        assert np.abs(gain_db).max() <= 6 + 1e-3 and gain_db.std() > 2
        bands = [filter_bands_of(curve) for curve in gain_db]
        assert len({len(b) for b in bands}) == 1 and 3 <= len(bands[0]) <= 5  # one count per batch
        counts.add(len(bands[0]))
        for curve, clip_bands in zip(gain_db, bands):
            assert min(len(band) for band in clip_bands) >= 6
            for band in clip_bands:
                np.testing.assert_allclose(curve[band], np.linspace(curve[band[0]], curve[band[-1]], len(band)),
                                           atol=1e-3)
        assert len({tuple(len(band) for band in b) for b in bands}) > 10  # edges drawn per clip
    assert len(counts) > 1


def test_filter_augment_touches_clips_with_its_chance_and_is_seeded_and_part_of_augment():
    from esc50_baseline.features.spectrogram_augmentation import filter_augment
    x, y = batch(n=200, mels=12)
    bands = (np.zeros(12, np.float32), np.ones(12, np.float32))
    out = np.asarray(filter_augment(x, np.array((1, 1), np.int32), 0.5, [-6, 6], bands))
    touched = ~np.isclose(out, x, atol=1e-4).all(axis=(1, 2, 3))
    assert 70 < touched.sum() < 130
    np.testing.assert_array_equal(out[~touched], x[~touched])
    settings = dict(OFF, filter_augment=1.0, filter_augment_db=[-6, 6])
    assert enabled(settings) and not enabled(dict(OFF, filter_augment=0.0, filter_augment_db=[-6, 6]))
    first, again, other = (np.asarray(augment(x, y, np.array(s, np.int32), settings, bands)[0])
                           for s in ((5, 6), (5, 6), (5, 7)))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other) and not np.allclose(first, x)


def two_sounds_in_their_own_bands(levels_db, mels=4, frames=20):
    """Log-mel magnitudes of clips that each sound in one mel band of their own (band i % 2, so a clip and its
    partner in a batch of even size never share one) at a steady power of `levels_db` dB, silent elsewhere."""
    x = np.full((len(levels_db), mels, frames, 1), np.log(np.finfo(np.float32).eps), np.float32)
    for i, level in enumerate(levels_db):
        x[i, i % 2] = 0.5 * np.log(10.0 ** (level / 10.0))
    return x


def between_class(x, seed, alpha=1.0):
    """Between-class mixup of raw log-mel magnitudes x, normalized and back; labels one-hot per clip."""
    from esc50_baseline.features.spectrogram_augmentation import mixup
    mean, std = x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3)) + 1.0
    shape = (1, -1, 1, 1)
    y = np.eye(len(x), dtype=np.float32)
    out, ay = mixup((x - mean.reshape(shape)) / std.reshape(shape), y, np.array(seed, np.int32), alpha,
                    "between_class", (mean, std))
    return np.asarray(out) * std.reshape(shape) + mean.reshape(shape), np.asarray(ay)


def test_between_class_mixup_adds_the_powers_so_that_the_label_weight_is_the_share_one_hears():
    # Clip i and its partner (the reversed batch) at levels 80 dB apart at most: whatever their gains, the two
    # sounds' powers in the mix stand as r^2 to (1 - r)^2, r being the weight of clip i's label.
    levels = np.array([-30.0, 40.0, 10.0, 10.0, 0.0, -20.0, 25.0, 50.0])
    x = two_sounds_in_their_own_bands(levels)
    out, ay = between_class(x, (3, 9))
    n = len(x)
    weights = []
    for i in range(n):
        j = n - 1 - i
        r = ay[i, i]
        assert abs(ay[i, j] - (1 - r)) < 1e-6 and abs(ay[i].sum() - 1) < 1e-6
        own, other = np.exp(2.0 * out[i, i % 2].astype(np.float64)), np.exp(2.0 * out[i, j % 2].astype(np.float64))
        np.testing.assert_allclose(np.log10(own / other), 2 * np.log10(r / (1 - r)), atol=2e-3)  # r^2 : (1-r)^2
        # the mix's level lies between the two clips' (sum of powers over sum of squared waveform ratios)
        total_db = 10 * np.log10(own.mean() + other.mean())
        assert min(levels[i], levels[j]) - 0.01 <= total_db <= max(levels[i], levels[j]) + 0.01
        weights.append(r)
    assert np.ptp(weights) > 0.3  # Beta(1, 1): weights spread over [0, 1]


def test_between_class_mixup_at_equal_gains_mixes_the_powers_by_the_label_weight():
    levels = np.full(6, 20.0)
    x = two_sounds_in_their_own_bands(levels)
    out, ay = between_class(x, (5, 1))
    for i in range(len(x)):
        r = ay[i, i]
        expected = 10 ** 2.0 * np.array([r ** 2, (1 - r) ** 2]) / (r ** 2 + (1 - r) ** 2)  # p = r
        got = np.exp(2.0 * out[i, [i % 2, (len(x) - 1 - i) % 2], 0, 0].astype(np.float64))
        np.testing.assert_allclose(got, expected, rtol=2e-3)


def test_log_mel_and_between_class_mixup_share_their_draws_and_differ_in_the_mix():
    from esc50_baseline.features.spectrogram_augmentation import mixup
    x, y = batch()
    bands = (np.full(12, 1.0, np.float32), np.full(12, 0.5, np.float32))
    seed = np.array((2, 8), np.int32)
    plain, plain_y = (np.asarray(a) for a in mixup(x, y, seed, 0.4))
    bc, bc_y = (np.asarray(a) for a in mixup(x, y, seed, 0.4, "between_class", bands))
    np.testing.assert_array_equal(plain_y, bc_y)
    assert np.abs(plain - bc).max() > 0.1
    settings = dict(OFF, mixup_alpha=0.4, mixup_kind="between_class")
    np.testing.assert_array_equal(np.asarray(augment(x, y, seed, settings, bands)[0]), bc)
    with pytest.raises(ValueError, match="between-class mixup mixes before the normalization"):
        augment(x, y, seed, settings)
