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
    # a few clips' shifted copies in one call: one window classified live costs one model call, not one a shift
    step = max(1, BATCH // len(shifts))
    parts = []
    for start in range(0, len(features), step):
        clips = features[start:start + step]
        rolled = np.concatenate([np.roll(clips, s, axis=2) if s else clips for s in shifts])
        parts.append(predict(rolled).reshape((len(shifts), len(clips), -1)).mean(axis=0))
    return np.concatenate(parts) if parts else predict(features)


BATCH = 64  # the model_files.predict batch: the shifted copies of a chunk of clips fill one
