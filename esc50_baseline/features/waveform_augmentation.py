"""Waveform augmentation, precomputed: a few augmented copies of every training clip's log-mel features.

Time stretch and pitch shift cost about 0.1 s a clip each (a phase vocoder), far too slow to run on every
clip of every epoch; so each training clip gets `copies` augmented versions, extracted once and cached
like the originals, and every epoch draws for each clip the original or one of its copies. A copy is a
fixed function of (seed, clip name, copy number): the cache is reproducible and can be resumed.

The background clip mixed into a copy comes from the clip's own fold. A fold is either wholly in
training or wholly the test fold, so a test clip can never leak into training through a background.
"""
import os
import zlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WaveformSettings:
    copies: int
    stretch: tuple            # (min rate, max rate) or () for off
    pitch_semitones: float    # shift by up to this many semitones up or down; 0 = off
    background_probability: float
    background_snr_db: tuple  # (min, max): level of the clip over the mixed-in background
    gain_db: float            # random gain within +- this
    noise_snr_db: tuple       # (min, max) SNR of added white noise, or () for off
    vocoder: str = "separate"  # "joint": stretch and pitch shift in one phase vocoder; "separate": one each
    recording_chain: float = 0.0  # chance that a copy goes through another device and channel (data/recording_chain)

    @classmethod
    def from_params(cls, p):
        return cls(copies=int(p["copies"]), stretch=tuple(p["stretch"] or ()),
                   pitch_semitones=float(p["pitch_semitones"]),
                   background_probability=float(p["background_probability"]),
                   background_snr_db=tuple(p["background_snr_db"]), gain_db=float(p["gain_db"]),
                   noise_snr_db=tuple(p["noise_snr_db"] or ()), vocoder=p["vocoder"],
                   recording_chain=float(p["recording_chain"]))


def copy_name(filename, copy):
    """The cache name of one augmented copy of a clip: dog.wav -> dog.copy1.wav (the cache drops the
    extension, so it must stay last)."""
    stem, ext = os.path.splitext(filename)
    return f"{stem}.copy{copy}{ext}"


def jobs(clips, fold_mates, settings, seed):
    """{copy name: (audio path, background audio path or None, seed of the copy)} for every copy of
    every clip. `clips`: [(filename, audio path, fold)]; `fold_mates`: {fold: [audio paths]}."""
    out = {}
    for filename, path, fold in clips:
        mates = [p for p in fold_mates[fold] if p != path]
        for copy in range(1, settings.copies + 1):
            copy_seed = [seed, zlib.crc32(filename.encode()), copy]
            rng = np.random.default_rng(copy_seed + [0])
            background = None
            if mates and rng.random() < settings.background_probability:
                background = mates[rng.integers(len(mates))]
            out[copy_name(filename, copy)] = (path, background, copy_seed)
    return out


def _fit(y, n):
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


def _rms(y):
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))


def _stretch_and_shift(y, rate, steps, fs):
    """`y` faster by `rate` and higher by `steps` semitones through one phase vocoder instead of two.
    librosa's pitch shift is a stretch by 1/f (f = 2 ** (steps / 12)) resampled from fs * f to fs; its stretch
    and ours compose into one stretch by rate / f. The vocoder is most of a copy's cost, the resampling little."""
    import librosa
    factor = 2.0 ** (steps / 12)
    if rate / factor != 1.0:
        y = librosa.effects.time_stretch(y, rate=rate / factor)
    return librosa.resample(y, orig_sr=fs * factor, target_sr=fs) if steps else y


def augment(y, background, seed, settings, fs):
    """The augmented copy of clip `y` (float32, its length kept): stretch, pitch shift, background,
    gain, noise, each drawn from the copy's own random stream."""
    import librosa
    rng = np.random.default_rng(seed + [1])
    n = len(y)
    rate = rng.uniform(*settings.stretch) if settings.stretch else 1.0
    steps = rng.uniform(-1, 1) * settings.pitch_semitones if settings.pitch_semitones else 0.0
    if settings.vocoder == "joint":
        y = _fit(_stretch_and_shift(y, rate, steps, fs), n)
    else:
        if settings.stretch:
            y = _fit(librosa.effects.time_stretch(y, rate=rate), n)
        if steps:
            y = librosa.effects.pitch_shift(y, sr=fs, n_steps=steps)
    if background is not None and _rms(background) > 0 and _rms(y) > 0:
        snr = rng.uniform(*settings.background_snr_db)
        y = y + background * (_rms(y) / _rms(background) / 10 ** (snr / 20))
    if settings.gain_db:
        y = y * 10 ** (rng.uniform(-1, 1) * settings.gain_db / 20)
    if settings.noise_snr_db and _rms(y) > 0:
        snr = rng.uniform(*settings.noise_snr_db)
        y = y + rng.standard_normal(n) * (_rms(y) / 10 ** (snr / 20))
    # drawn last, and only when on, so that the copies made without it stay as they were
    if settings.recording_chain and rng.random() < settings.recording_chain:
        from ..data.recording_chain import degrade
        y = degrade(np.asarray(y, dtype=np.float32), fs, rng)
    return np.asarray(y, dtype=np.float32)
