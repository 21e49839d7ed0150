"""Per-mel-band mean and standard deviation, fitted on one fold's training clips only."""
import numpy as np

from ..atomic import atomic_path
from ..errors import DamagedFile


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
        with atomic_path(path, ".npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, mean=self.mean, std=self.std)

    @classmethod
    def load(cls, path):
        """The saved statistics; DamagedFile when the file is not the complete archive that was written
        (an .npz is a zip: every member carries a CRC-32, checked as it is read)."""
        try:
            with np.load(path) as data:
                return cls(data["mean"], data["std"])
        except Exception as e:  # noqa: BLE001  (zipfile meets damage with a dozen exception types)
            raise DamagedFile(path, str(e) or type(e).__name__) from None

    @classmethod
    def intact(cls, path):
        try:
            cls.load(path)
            return True
        except DamagedFile:
            return False
