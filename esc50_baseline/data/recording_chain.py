"""Recordings made otherwise than ESC-50's: the links of a recording chain that differ between a user's device and
freesound's uploads (band limits, low sample rates, lossy codecs, rooms, levels, noise, lengths), each applied to a
clip and written as a file, so that the file goes through the same reading, resampling and windowing as a user's.

Each condition: (samples float32 mono at `fs`, fs, rng) -> (samples, rate, format, subtype) to write."""
import numpy as np


def _resampled(y, fs, rate):
    import soxr
    return soxr.resample(y, fs, rate, quality="HQ").astype(np.float32)


def _rms(y):
    return float(np.sqrt(np.mean(np.square(y)))) + 1e-12


def phone(y, fs, rng):
    """A narrow-band telephone call: 300-3400 Hz, 8 kHz, 16-bit."""
    from scipy.signal import butter, sosfiltfilt
    band = sosfiltfilt(butter(6, [300, 3400], btype="bandpass", fs=fs, output="sos"), y).astype(np.float32)
    return _resampled(band, fs, 8000), 8000, "WAV", "PCM_16"


def low_rate(y, fs, rng):
    """A 16 kHz recording (no content above 8 kHz), as many microphones and voice pipelines give."""
    return _resampled(y, fs, 16000), 16000, "WAV", "PCM_16"


def mp3(y, fs, rng):
    """MP3 at 16 kHz and about 24 kbit/s, as a messaging app keeps it."""
    return _resampled(y, fs, 16000), 16000, "MP3", "MPEG_LAYER_III"


def room(y, fs, rng, rt60=0.6):
    """A reverberant room: the clip convolved with an exponentially decaying noise tail (RT60 0.6 s) as strong as
    the direct sound (a listener a few metres from the source), at the clip's own level."""
    from scipy.signal import fftconvolve
    n = int(rt60 * fs)
    tail = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)  # -60 dB at rt60
    impulse = np.concatenate([[1.0], np.zeros(int(0.005 * fs)), tail / np.sqrt(np.sum(np.square(tail)))])
    wet = fftconvolve(y, impulse)[:len(y)]
    return (wet * _rms(y) / _rms(wet)).astype(np.float32), fs, "WAV", "FLOAT"


def quiet(y, fs, rng):
    """30 dB quieter (a far or gain-less microphone), 16-bit."""
    return (y * 10 ** (-30 / 20)).astype(np.float32), fs, "WAV", "PCM_16"


def clipped(y, fs, rng):
    """20 dB too hot: clipped at full scale."""
    return np.clip(y * 10.0, -1.0, 1.0).astype(np.float32), fs, "WAV", "PCM_16"


def noisy(y, fs, rng, snr_db=10.0):
    """Pink background noise 10 dB under the clip's level."""
    white = np.fft.rfft(rng.standard_normal(len(y)))
    pink = np.fft.irfft(white / np.sqrt(np.maximum(np.arange(len(white)), 1)), n=len(y))
    noise = pink / _rms(pink) * _rms(y) * 10 ** (-snr_db / 20)
    return (y + noise).astype(np.float32), fs, "WAV", "FLOAT"


def short(y, fs, rng, seconds=1.0):
    """Its loudest second alone: a short recording."""
    n = int(seconds * fs)
    energy = np.convolve(np.square(y), np.ones(n), mode="valid")
    start = int(np.argmax(energy)) if len(energy) else 0
    return y[start:start + n].copy(), fs, "WAV", "FLOAT"


def long(y, fs, rng, seconds=30.0):
    """The clip inside 30 s of quiet room noise (40 dB under it): a long recording with one event."""
    n = int(seconds * fs)
    floor = rng.standard_normal(n).astype(np.float32) * _rms(y) * 10 ** (-40 / 20)
    start = int(rng.integers(0, n - len(y)))
    floor[start:start + len(y)] += y
    return floor, fs, "WAV", "FLOAT"


CONDITIONS = {"phone 8 kHz": phone, "16 kHz": low_rate, "MP3 16 kHz": mp3, "room": room, "-30 dB": quiet,
              "clipped": clipped, "noise 10 dB": noisy, "1 s": short, "30 s": long}


def write(path, samples, rate, fmt, subtype):
    import soundfile as sf
    extra = {"compression_level": 0.9, "bitrate_mode": "CONSTANT"} if fmt == "MP3" else {}
    sf.write(path, samples, rate, format=fmt, subtype=subtype, **extra)


# The conditions a training copy may go through (recording_chain in learner.augmentation.waveform): those of another
# device and channel; level and noise have their own augmentations, lengths are the windowing's.
AUGMENTING = ("phone 8 kHz", "16 kHz", "MP3 16 kHz", "room")


def degrade(y, fs, rng):
    """`y` through one condition of AUGMENTING, drawn by `rng`, back at `fs` and at its own length."""
    import io
    import soundfile as sf
    name = AUGMENTING[rng.integers(len(AUGMENTING))]
    samples, rate, fmt, subtype = CONDITIONS[name](y, fs, rng)
    if fmt == "MP3":
        buffer = io.BytesIO()
        write(buffer, samples, rate, fmt, subtype)
        buffer.seek(0)
        samples = sf.read(buffer, dtype="float32")[0]
    if rate != fs:
        samples = _resampled(samples, rate, fs)
    out = samples[:len(y)] if len(samples) >= len(y) else np.pad(samples, (0, len(y) - len(samples)))
    return out.astype(np.float32)
