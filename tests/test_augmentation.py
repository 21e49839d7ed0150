import numpy as np

from esc50_baseline.training import runtime  # noqa: F401
from esc50_baseline.features.spectrogram_augmentation import augment

OFF = {"time_shift": 0, "freq_masks": 0, "freq_mask_width": 8, "time_masks": 0, "time_mask_width": 25,
       "mixup_alpha": 0.0}


def batch(n=6, mels=12, frames=30):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, mels, frames, 1)).astype(np.float32) + 5.0  # no zeros of its own
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]
    return x, y


def run(settings, seed=(1, 2)):
    x, y = batch()
    ax, ay = augment(x, y, np.array(seed, np.int32), dict(OFF, **settings))
    return x, y, np.asarray(ax), np.asarray(ay)


def test_time_shift_rolls_each_clip_within_the_bound():
    x, y, ax, ay = run({"time_shift": 4})
    for original, shifted in zip(x, ax):
        matches = [s for s in range(-4, 5) if np.array_equal(np.roll(original, s, axis=1), shifted)]
        assert len(matches) == 1
    np.testing.assert_array_equal(ay, y)


def test_masks_zero_whole_bands_no_wider_than_allowed():
    x, _, ax, _ = run({"freq_masks": 2, "freq_mask_width": 3, "time_masks": 1, "time_mask_width": 5})
    for clip in ax[..., 0]:
        zero_rows = np.where((clip == 0).all(axis=1))[0]
        zero_cols = np.where((clip == 0).all(axis=0))[0]
        assert len(zero_rows) <= 2 * 3 and len(zero_cols) <= 5
        untouched = np.ix_(np.setdiff1d(np.arange(12), zero_rows), np.setdiff1d(np.arange(30), zero_cols))
        assert (clip[untouched] != 0).all()  # only whole bands are masked
    assert (ax == 0).any()


def test_mixup_mixes_inputs_and_labels_alike():
    x, y, ax, ay = run({"mixup_alpha": 0.4})
    np.testing.assert_allclose(ay.sum(axis=1), 1.0, rtol=1e-6)
    partner = x[::-1]
    for i in range(len(x)):
        # x_i = lam * x_i + (1 - lam) * x_partner: recover lam from one value, check it everywhere
        lam = (ax[i, 0, 0, 0] - partner[i, 0, 0, 0]) / (x[i, 0, 0, 0] - partner[i, 0, 0, 0])
        np.testing.assert_allclose(ax[i], lam * x[i] + (1 - lam) * partner[i], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(ay[i], lam * y[i] + (1 - lam) * y[::-1][i], rtol=1e-4, atol=1e-4)


def test_same_seed_same_augmentation():
    settings = {"time_shift": 3, "freq_masks": 1, "time_masks": 1, "mixup_alpha": 0.2}
    first, second, other = run(settings, (7, 1))[2], run(settings, (7, 1))[2], run(settings, (7, 2))[2]
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


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

