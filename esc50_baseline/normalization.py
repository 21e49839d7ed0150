"""Per-mel-band mean and standard deviation, fitted on one fold's training clips only."""
import os
import tempfile

import numpy as np


class Normalizer:
    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    @classmethod
    def fit(cls, features):
        """features: (clips, n_mels, n_frames); statistics per mel band over clips and frames."""
        x = np.asarray(features, dtype=np.float64)
        std = x.std(axis=(0, 2))
        return cls(x.mean(axis=(0, 2)), np.where(std > 0, std, 1.0))

    def __call__(self, features):
        return ((features - self.mean[:, None]) / self.std[:, None]).astype(np.float32)

    def save(self, path):
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, mean=self.mean, std=self.std)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path):
        with np.load(path) as data:
            return cls(data["mean"], data["std"])
