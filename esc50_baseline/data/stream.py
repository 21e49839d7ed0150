"""Windows of a live stream: raw 16-bit little-endian PCM (arecord's S16_LE, ffmpeg's s16le) read from a binary
stream as it arrives, mixed to mono, resampled to the model's rate chunk by chunk, and cut into windows that start
every hop."""
import time

import numpy as np


class StreamError(Exception):
    """A stream that cannot be read as the PCM it was said to be."""


class PcmWindows:
    """`for window, end_s, arrived in PcmWindows(stream, rate, channels, fs, n, hop)`: each window of n samples at
    fs (zero-padded when the stream ends before a first full one), the stream time its last sample has (seconds),
    and the monotonic clock when the bytes that completed it arrived. Reads `hop` samples' worth at a time, so a
    window is out as soon as its last sample is in."""

    def __init__(self, stream, rate, channels, fs, n, hop):
        self.stream, self.rate, self.channels, self.fs, self.n, self.hop = stream, rate, channels, fs, n, hop
        self.samples = 0  # at fs, so far

    def __iter__(self):
        resampler = None
        if self.rate != self.fs:
            import soxr
            resampler = soxr.ResampleStream(self.rate, self.fs, 1, dtype="float32", quality="HQ")
        frame = 2 * self.channels
        chunk = max(1, int(round(self.hop * self.rate / self.fs))) * frame
        pending, emitted, left = np.zeros(0, np.float32), 0, b""
        while True:
            data = self.stream.read(chunk)
            arrived = time.monotonic()
            data, last = left + (data or b""), not data
            whole = len(data) // frame * frame
            data, left = data[:whole], data[whole:]
            pcm = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
            mono = pcm.reshape(-1, self.channels).mean(axis=1) if self.channels > 1 else pcm
            block = resampler.resample_chunk(mono, last=last) if resampler else mono
            self.samples += len(block)
            pending = np.concatenate([pending, block])
            while len(pending) >= self.n:
                yield pending[:self.n], (self.samples - len(pending) + self.n) / self.fs, arrived
                pending, emitted = pending[self.hop:], emitted + 1
            if last:
                break
        if left:
            raise StreamError(f"the stream ended in the middle of a sample frame ({len(left)} of {frame} bytes): "
                              "it is not 16-bit PCM with that channel count")
        if not emitted and len(pending):  # shorter than one window: what there is, padded
            yield np.pad(pending, (0, self.n - len(pending))), self.samples / self.fs, arrived
