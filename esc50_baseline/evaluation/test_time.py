"""Test-time augmentation: the mean of a model's predictions over circular time shifts of each clip.

Training with `augmentation.time_shift` shows the network every clip rolled in time; at test time the
same rolls, averaged, smooth out the positions it happens to classify badly. Shift 0 alone is the
plain prediction. Keras testing, TFLite testing and --predict all go through here.
"""
import numpy as np


def averaged(predict, features, shifts, axis=2, step=1):
    """predict: (clips, n_mels, n_frames) -> probabilities; returns their mean over `shifts` (frames). A model
    that takes samples (clips, n_samples) is given them rolled by the same frames: axis=1, step=hop length."""
    shifts = list(shifts) or [0]
    return np.mean([predict(np.roll(features, int(s) * step, axis=axis) if s else features) for s in shifts], axis=0)
