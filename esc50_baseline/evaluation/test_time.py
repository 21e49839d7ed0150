"""Test-time augmentation: the mean of a model's predictions over circular time shifts of each clip.

Training with `augmentation.time_shift` shows the network every clip rolled in time; at test time the
same rolls, averaged, smooth out the positions it happens to classify badly. Shift 0 alone is the
plain prediction. Keras testing, TFLite testing and --predict all go through here.
"""
import numpy as np


def averaged(predict, features, shifts, shift_inside=False):
    """predict: (clips, n_mels, n_frames) -> probabilities; returns their mean over `shifts` (frames). A model that
    rolls its own features (a raw-audio model, which takes samples) is called as predict(samples, shift)."""
    shifts = [int(s) for s in shifts] or [0]
    if shift_inside:
        return np.mean([predict(features, s) for s in shifts], axis=0)
    return np.mean([predict(np.roll(features, s, axis=2) if s else features) for s in shifts], axis=0)
