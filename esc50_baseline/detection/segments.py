"""Where a recording is active and what sounds there: the detector's front end when
`detection.segmentation` is `spectral`.

A frame (20 ms) is active when its spectrum stands out of the recording's own noise floor: its log-mel power
over each band's 20th percentile across the recording, the frame active when its 90th-percentile band (the
4th highest of 40) is `activity_db` above: a band-wise floor, unlike one level for the whole spectrum, is
not fooled by a background that is loud in a few bands, nor is one band's burst of noise an event. Active
runs closer than 0.1 s are joined; shorter ones dropped.

Each active segment is classified whole, zero-padded to a clip as ESC-50 pads its short sounds, so the model
sees an event as it saw its training clips; a segment longer than a clip, by clip-long windows every second,
each frame the mean of the windows over it. Boundaries come from the signal, to a frame; classes from the model.
With `detection.denoise` the segments are classified from the recording without its noise floor (denoise.py).
On soundscapes of the development split's training clips this took the event-based F1 of sliding windows
(whose boundaries are only known to a window) from 0.03 to 0.48: see docs/detection.md.
"""
import librosa
import numpy as np

from .denoise import without_noise_floor
from .events import runs

FRAME_SECONDS = 0.02
NOISE_PERCENTILE = 20        # of each band over time: the floor
BAND_PERCENTILE = 90         # of the bands' rise over their floor, per frame: a sound must raise a few bands
JOIN_SECONDS = 0.1
MIN_SEGMENT_SECONDS = 0.1
LONG_SEGMENT_HOP_SECONDS = 1.0
MEL_BANDS = 40
SEGMENTS_PER_BATCH = 32


def rise_db(y, fs):
    """Per frame, the BAND_PERCENTILE-th of the mel bands' rise in dB over their own NOISE_PERCENTILE-th
    percentile across the recording. Frame i is centred on the middle of [i, i + 1) * FRAME_SECONDS (a window of
    two frames, Hann)."""
    hop = int(round(FRAME_SECONDS * fs))
    y = np.pad(np.asarray(y, dtype=np.float32), (hop // 2, 0))
    if len(y) < 2 * hop:
        return np.zeros(0)
    power = librosa.feature.melspectrogram(y=y, sr=fs, n_fft=2 * hop, hop_length=hop, n_mels=MEL_BANDS, center=False)
    level = 10 * np.log10(power + 1e-12)
    rise = np.maximum(level - np.percentile(level, NOISE_PERCENTILE, axis=1, keepdims=True), 0)
    return np.percentile(rise, BAND_PERCENTILE, axis=0)


def active_segments(y, fs, activity_db):
    """[(first frame, end frame)] of the recording's active segments, end exclusive."""
    active = rise_db(y, fs) > activity_db
    found = runs(active)
    join = int(round(JOIN_SECONDS / FRAME_SECONDS))
    for (_s, end), (start, _e) in zip(found, found[1:]):
        if start - end <= join:
            active[end:start] = True
    shortest = int(round(MIN_SEGMENT_SECONDS / FRAME_SECONDS))
    return [(int(s), int(e)) for s, e in runs(active) if e - s >= shortest]


def segment_curve(y, fs, clip_samples, scorer, activity_db, classes, denoise=False):
    """(frames, classes) scores: each active segment's class scores over its frames, zero elsewhere.
    `scorer(clips)` takes (batch, clip_samples) samples and returns (batch, classes) probabilities. With
    `denoise`, the segments are found in the recording and classified without its noise floor (denoise.py)."""
    frame = int(round(FRAME_SECONDS * fs))
    found = active_segments(y, fs, activity_db)
    if denoise and found:
        y = without_noise_floor(y, fs, NOISE_PERCENTILE)
    windows, spans = [], []   # every clip-long window to classify, and the frames it speaks for
    for s, e in found:
        piece = y[s * frame:e * frame]
        for a in _window_starts(len(piece), clip_samples, int(round(LONG_SEGMENT_HOP_SECONDS * fs))):
            windows.append(np.pad(piece[a:a + clip_samples], (0, max(0, clip_samples - len(piece)))))
            spans.append((s + a // frame, min(s + (a + clip_samples) // frame, e)))
    frames = max(len(y) // frame, 1)
    curve, counts = np.zeros((frames, classes)), np.zeros(frames)
    for i in range(0, len(windows), SEGMENTS_PER_BATCH):
        for (first, end), p in zip(spans[i:i + SEGMENTS_PER_BATCH], scorer(np.stack(windows[i:i + SEGMENTS_PER_BATCH]))):
            curve[first:end] += p
            counts[first:end] += 1
    return curve / np.maximum(counts, 1)[:, None]


def _window_starts(length, clip_samples, hop):
    """Starts of the clip-long windows over a segment of `length` samples: one when it fits a clip, else one
    every `hop` and one ending at its end."""
    if length <= clip_samples:
        return [0]
    starts = list(range(0, length - clip_samples + 1, hop))
    return starts if starts[-1] == length - clip_samples else starts + [length - clip_samples]
