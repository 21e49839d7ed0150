"""Per-mel-band mean and standard deviation, fitted on one fold's training clips only."""
import numpy as np

from .. import results_io


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
        results_io.write_arrays(path, mean=self.mean, std=self.std)

    @classmethod
    def load(cls, path):
        """The saved statistics; DamagedFile when the file is not the whole archive that was written."""
        arrays = results_io.read_arrays(path, required=("mean", "std"))
        return cls(arrays["mean"], arrays["std"])

    @classmethod
    def intact(cls, path):
        return results_io.intact(cls.load, path)
