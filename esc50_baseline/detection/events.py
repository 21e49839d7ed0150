"""Class score curves to an event list, the DCASE task 4 way: a threshold per class, a median filter on each
class's activity, events of one class merged across short gaps, too-short events dropped.

A score curve is (segments, classes): segment j covers [j * hop, (j + 1) * hop) seconds of the recording.
Events are (onset, offset, label) in seconds, sorted by onset.
"""
from dataclasses import dataclass

import numpy as np


@dataclass
class PostProcessing:
    thresholds: object          # one number, or one per class
    median_filter_seconds: float = 0.0
    max_gap_seconds: float = 0.0
    min_event_seconds: float = 0.0

    @classmethod
    def from_params(cls, detection, thresholds):
        return cls(thresholds, detection["median_filter_seconds"], detection["max_gap_seconds"],
                   detection["min_event_seconds"])


def median_filtered(active, width):
    """Each column's running median over `width` segments of boolean activity (odd: the majority; the ends are
    padded with their own edge values)."""
    if width <= 1 or len(active) == 0:
        return active
    half = width // 2
    padded = np.concatenate([np.repeat(active[:1], half, axis=0), active, np.repeat(active[-1:], half, axis=0)])
    windows = np.lib.stride_tricks.sliding_window_view(padded.astype(np.float32), width, axis=0)
    return np.median(windows, axis=-1) >= 0.5


def runs(column):
    """(start, end) segment indices of each run of True in a boolean vector, end exclusive."""
    edges = np.diff(np.concatenate([[0], column.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def detect(curve, hop, labels, post, duration=None):
    """Events of one recording from its score curve."""
    thresholds = np.broadcast_to(np.asarray(post.thresholds, dtype=np.float64), (curve.shape[1],))
    active = curve >= thresholds
    width = int(round(post.median_filter_seconds / hop)) // 2 * 2 + 1 if post.median_filter_seconds else 1
    active = median_filtered(active, width)
    end_of_audio = duration if duration is not None else len(curve) * hop
    events = []
    for c, label in enumerate(labels):
        merged = []
        for start, end in runs(active[:, c]):
            onset, offset = start * hop, min(end * hop, end_of_audio)
            if merged and onset - merged[-1][1] <= post.max_gap_seconds + 1e-9:
                merged[-1][1] = offset
            else:
                merged.append([onset, offset])
        events += [(round(on, 6), round(off, 6), label) for on, off in merged
                   if off - on >= post.min_event_seconds - 1e-9]
    return sorted(events, key=lambda e: (e[0], e[2]))
