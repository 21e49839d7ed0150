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


class Windows:
    """A recording's windows of n_samples at `fs`, read and resampled block by block, so that a long file
    never sits in memory whole: `for window in Windows(path, fs, n)`. Without `hop`, full windows follow each
    other and the last, shorter one is zero-padded and kept when it is at least a fifth of a window, or when it
    is all there is. With `hop` (samples), a window starts every hop while the recording lasts, the last ones
    zero-padded. After the loop, `samples` is the recording's length at `fs`."""

    def __init__(self, path, fs, n_samples, hop=None):
        self.path, self.fs, self.n, self.hop = path, fs, n_samples, hop
        self.samples = 0

    def __iter__(self):
        _check_complete(self.path)
        step = self.hop or self.n
        pending, emitted = np.zeros(0, np.float32), 0
        for block in self._blocks():
            self.samples += len(block)
            pending = np.concatenate([pending, block])
            while len(pending) >= self.n:
                yield pending[:self.n]
                pending, emitted = pending[step:], emitted + 1
        if self.samples == 0:
            raise AudioError(self.path, "no samples")
        if self.hop is None:
            if len(pending) >= self.n // 5 or not emitted:
                yield np.pad(pending, (0, self.n - len(pending)))
            return
        while emitted * step < self.samples:
            yield np.pad(pending[:self.n], (0, self.n - len(pending[:self.n])))
            pending, emitted = pending[step:], emitted + 1

    def _blocks(self):
        """Mono float32 blocks at self.fs."""
        try:
            f = sf.SoundFile(self.path)
        except sf.LibsndfileError as e:
            raise AudioError(self.path, f"not readable as audio: {_short(e)}")
        except (RuntimeError, ValueError, EOFError) as e:
            raise AudioError(self.path, f"not readable as audio: {e}")
        with f:
            stream = None
            if f.samplerate != self.fs:
                import soxr
                stream = soxr.ResampleStream(f.samplerate, self.fs, 1, dtype="float32", quality="HQ")
            for block in f.blocks(blocksize=max(f.samplerate, 1) * 10, dtype="float32", always_2d=True):
                if not np.isfinite(block).all():
                    raise AudioError(self.path, "NaN or infinite samples")
                y = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
                yield stream.resample_chunk(y) if stream else y
            if stream:
                yield stream.resample_chunk(np.zeros(0, np.float32), last=True)


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


def batches(items, size):
    """Lists of up to `size` consecutive items of an iterable."""
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
