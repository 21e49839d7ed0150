"""Read any audio file as a fixed-length mono clip at the configured rate, or say clearly why not."""
import os

import numpy as np
import soundfile as sf


class AudioError(Exception):
    """A clip that cannot be used: str() gives "path (problem)"."""

    def __init__(self, path, problem):
        super().__init__(f"{path} ({problem})")
        self.path, self.problem = path, problem


def read_clip(path, fs, n_samples=None):
    """Return float32 mono samples at `fs`; padded with zeros or cut to `n_samples` when it is given."""
    _check_complete(path)
    try:
        data, file_fs = sf.read(path, dtype="float32", always_2d=True)
    except sf.LibsndfileError as e:
        raise AudioError(path, f"not readable as audio: {_short(e)}")
    except (RuntimeError, ValueError, EOFError) as e:
        raise AudioError(path, f"not readable as audio: {e}")
    if data.shape[0] == 0:
        raise AudioError(path, "no samples")
    if not np.isfinite(data).all():
        raise AudioError(path, "NaN or infinite samples")
    y = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if file_fs != fs:
        import soxr  # the resampler librosa uses by default (soxr_hq)
        y = soxr.resample(y, file_fs, fs, quality="HQ").astype(np.float32)
    if n_samples is not None:
        y = y[:n_samples] if len(y) >= n_samples else np.pad(y, (0, n_samples - len(y)))
    return np.ascontiguousarray(y, dtype=np.float32)


def _check_complete(path):
    """libsndfile reads a truncated WAV without complaint, returning the samples that are there; the RIFF
    header tells how long the file should be."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            header = f.read(12)
    except OSError as e:
        raise AudioError(path, f"cannot be opened: {e.strerror}")
    if size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    if len(header) == 12 and header[:4] == b"RIFF" and header[8:12] == b"WAVE":
        declared = int.from_bytes(header[4:8], "little") + 8
        if declared not in (8, 0xFFFFFFFF + 8) and declared > size:  # 0 and -1: written by streaming tools
            raise AudioError(path, f"truncated WAV: its header declares {declared} bytes, the file has {size}")


def _short(error):
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text.split(": ", 1)[-1] if "Error opening" in text else text
