"""Synthetic soundscapes: detection measured without new data. Each is 30-60 s of a quiet background with
clips of one pool (a fold's test clips, or its validation clips) placed on it, cut to their active region;
its reference annotations (the DCASE task 4 TSV: filename, onset, offset, event_label) are written beside it.

An event is the part of a clip from its first to its last frame within `active_db` of its loudest frame
(ESC-50 pads short sounds with silence). In a soundscape without overlap the events follow each other with
random gaps; in one with overlap the same kind of draw is placed at random onsets anywhere. The events keep
their recorded level; the background, another clip of the same pool looped, goes a drawn ratio under them.
That clip is a sound of one of the 50 classes, often with pauses: looped as it is (`background: clip`) it
repeats an event nobody annotated every five seconds, which a good detector is then punished for finding;
`stationary` (the default) loops noise with its long-term spectrum instead (its phases randomized).
An event is annotated where it can be heard: from its first to its last frame `audible_db` above the
background under it (ESC-50's levels differ by tens of dB, so a quiet clip's fade-in or a whole quiet clip
can sit under a background drawn relative to the mean level; annotating what nobody hears would ask the
impossible of a detector).
Everything is drawn from (seed, pool name): the same settings give the same soundscapes.
"""
import os
from dataclasses import dataclass

import numpy as np

from ..atomic import atomic_dir

BACKGROUND_RMS = 10 ** (-50 / 20)  # -50 dB re full scale: a soundscape without events gets this background level
PHASE_SEED = 0  # the phases of a stationary background: fixed, so they draw nothing from a soundscape's generator


@dataclass(frozen=True)
class SoundscapeSettings:
    per_fold: int
    seconds: tuple
    event_snr_db: tuple
    gap_seconds: tuple
    overlap_share: float
    active_db: float
    audible_db: float = 0.0
    background: str = "stationary"

    @classmethod
    def from_params(cls, p):
        return cls(p["per_fold"], tuple(p["seconds"]), tuple(p["event_snr_db"]), tuple(p["gap_seconds"]),
                   p["overlap_share"], p["active_db"], p["audible_db"], p["background"])


FRAME_SECONDS = 0.02


def frame_rms(y, frame):
    """RMS of each whole frame of `frame` samples."""
    count = len(y) // frame
    return np.sqrt(np.mean(np.square(y[:count * frame].reshape(count, frame), dtype=np.float64), axis=1))


def active_region(y, fs, active_db, frame_seconds=FRAME_SECONDS):
    """(start, end) samples of the clip's active region: its first to its last frame whose RMS is within
    `active_db` of the loudest frame's. The whole clip when it is silent."""
    frame = max(1, int(round(frame_seconds * fs)))
    rms = frame_rms(y, frame)
    if len(rms) == 0 or rms.max() <= 0:
        return 0, len(y)
    loud = np.flatnonzero(20 * np.log10(np.maximum(rms, 1e-12) / rms.max()) >= -active_db)
    return int(loud[0] * frame), int(min((loud[-1] + 1) * frame, len(y)))


def audible_region(event, bed, fs, audible_db, frame_seconds=FRAME_SECONDS):
    """(start, end) samples of the part of `event` that a listener can hear over `bed` (the background under
    it, as long): its first to its last frame at least `audible_db` above the bed's frame. None when no frame
    is (the event is placed but not annotated: no detector could be asked to find it)."""
    frame = max(1, int(round(frame_seconds * fs)))
    if len(event) < frame:
        return 0, len(event)
    margin = 10 ** (audible_db / 20)
    loud = frame_rms(event, frame)
    heard = np.flatnonzero(loud >= margin * np.maximum(frame_rms(bed, frame), 1e-12))
    if len(heard) == 0:
        return None
    last_whole = heard[-1] == len(loud) - 1  # then the ragged tail after the last whole frame belongs to it
    return int(heard[0] * frame), len(event) if last_whole else int((heard[-1] + 1) * frame)


def stationary(y):
    """Noise with the clip's long-term spectrum: its magnitudes with fixed pseudo-random phases. It sounds like
    the clip smeared over its whole length, without the clip's events, and loops without a seam."""
    spectrum = np.fft.rfft(np.asarray(y, dtype=np.float64))
    phases = np.random.default_rng(PHASE_SEED).uniform(0, 2 * np.pi, len(spectrum))
    phases[0] = phases[-1] = 0  # the mean and (for an even length) the Nyquist bin are real
    return np.fft.irfft(np.abs(spectrum) * np.exp(1j * phases), n=len(y))


def _rms(y):
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if len(y) else 0.0


def compose(events, background, fs, seconds, overlap, settings, rng):
    """(samples, [(onset, offset, label)]) of one soundscape. `events` is an iterator of (samples, label),
    already cut to their active region; as many are taken as fit one after another with the drawn gaps."""
    n = int(round(seconds * fs))
    placed, t = [], int(round(rng.uniform(*settings.gap_seconds) * fs))
    for samples, label in events:
        if t + len(samples) > n:
            break
        placed.append((t, samples, label))
        t += len(samples) + int(round(rng.uniform(*settings.gap_seconds) * fs))
    # the events keep their recorded level (the classifier's training distribution); the background is put
    # the drawn ratio under their mean level
    ratio = 10 ** (-rng.uniform(*settings.event_snr_db) / 20)
    level = np.mean([_rms(samples) for _t, samples, _label in placed]) * ratio if placed else BACKGROUND_RMS
    if settings.background == "stationary" and len(background):
        background = stationary(background)
    loops = np.resize(background, n) if len(background) and _rms(background) > 0 else np.zeros(n)
    mix = loops * (level / max(_rms(loops), 1e-12)) if loops.any() else loops.astype(np.float64)
    bed, annotations = mix.copy(), []
    for start, samples, label in placed:
        if overlap:
            start = int(rng.integers(0, n - len(samples) + 1))
        mix[start:start + len(samples)] += samples
        heard = audible_region(samples, bed[start:start + len(samples)], fs, settings.audible_db)
        if heard is not None:
            annotations.append(((start + heard[0]) / fs, (start + heard[1]) / fs, label))
    peak = np.abs(mix).max()
    if peak > 0.99:  # no clipping: the whole mixture scaled down, which keeps every ratio
        mix *= 0.99 / peak
    return mix.astype(np.float32), merged(annotations)


def merged(annotations):
    """Overlapping events of one class as one: the class is active over their union (PSDS requires it)."""
    out = []
    for onset, offset, label in sorted(annotations, key=lambda a: (a[2], a[0])):
        if out and out[-1][2] == label and onset <= out[-1][1]:
            out[-1][1] = max(out[-1][1], offset)
        else:
            out.append([onset, offset, label])
    return sorted(tuple(a) for a in out)


def make(folder, clips, read, fs, settings, seed):
    """The soundscapes of one pool in `folder` (written whole or not at all; kept when it exists). `clips`:
    [(clip id, label)]; `read(clip id)` -> samples at fs. Returns the soundscapes' names."""
    index = os.path.join(folder, "soundscapes.tsv")
    if os.path.exists(index):
        return _names(index)
    import soundfile as sf
    rng = np.random.default_rng(seed)
    queue = _endless_permutations(len(clips), rng)
    with atomic_dir(folder) as tmp:
        rows = []
        for k in range(settings.per_fold):
            name = f"soundscape_{k:03d}.wav"
            background = next(queue)
            events = ((_cut(read(clips[i][0]), fs, settings), clips[i][1]) for i in queue if i != background)
            overlap = int((k + 1) * settings.overlap_share) > int(k * settings.overlap_share)  # spread evenly
            seconds = float(rng.uniform(*settings.seconds))
            samples, annotations = compose(events, read(clips[background][0]), fs, seconds, overlap, settings, rng)
            sf.write(os.path.join(tmp, name), samples, fs, subtype="PCM_16")
            _write_annotations(os.path.join(tmp, name.replace(".wav", ".tsv")), name, annotations)
            rows.append(f"{name}\t{seconds:.6f}\t{int(overlap)}\t{len(annotations)}")
        with open(os.path.join(tmp, "soundscapes.tsv"), "w") as f:
            f.write("filename\tduration\toverlap\tevents\n" + "".join(r + "\n" for r in rows))
    return _names(index)


def _endless_permutations(n, rng):
    """Clip indices: one permutation after another, so every clip is used before any is used again."""
    while True:
        yield from (int(i) for i in rng.permutation(n))


def _cut(y, fs, settings):
    start, end = active_region(y, fs, settings.active_db)
    return np.asarray(y[start:end], dtype=np.float64)


def _write_annotations(path, name, annotations):
    with open(path, "w") as f:
        f.write("filename\tonset\toffset\tevent_label\n")
        f.writelines(f"{name}\t{on:.6f}\t{off:.6f}\t{label}\n" for on, off, label in annotations)


def _names(index):
    with open(index) as f:
        return [line.split("\t")[0] for line in f.read().splitlines()[1:]]


def read_index(folder):
    """{name: duration seconds} of a pool's soundscapes."""
    with open(os.path.join(folder, "soundscapes.tsv")) as f:
        return {line.split("\t")[0]: float(line.split("\t")[1]) for line in f.read().splitlines()[1:]}


def read_annotations(path):
    """[(onset, offset, label)] of a DCASE task 4 TSV (filename, onset, offset, event_label)."""
    with open(path) as f:
        lines = f.read().splitlines()[1:]
    return [(float(on), float(off), label) for _name, on, off, label in (line.split("\t") for line in lines if line)]
