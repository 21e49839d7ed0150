"""Result and state files: probability and result tables (pandas CSV), YAML, and named arrays (.npz),
always written to a temporary name and then renamed; reading one back tells a damaged file from a good one."""
import io

import numpy as np
import yaml

from .atomic import write_bytes as atomic_write_bytes
from .atomic import write_text as atomic_write_text
from .errors import DamagedFile


def intact(read, *args):
    """True when `read(*args)` gives back what was written: the file is there and not damaged."""
    try:
        read(*args)
        return True
    except (DamagedFile, OSError):
        return False


def write_arrays(path, **arrays):
    """Named arrays as one .npz file."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def read_arrays(path, required=()):
    """{name: array} of an .npz file, every member read, so every member's CRC-32 checked (an .npz is a zip);
    DamagedFile when it is not the whole archive that was written, or lacks a `required` array."""
    try:
        with np.load(path) as data:
            arrays = {key: data[key] for key in data.files}
    except Exception as e:  # noqa: BLE001  (zipfile meets damage with a dozen exception types)
        raise DamagedFile(path, str(e) or type(e).__name__) from None
    missing = [key for key in required if key not in arrays]
    if missing:
        raise DamagedFile(path, f"it lacks {', '.join(missing)}")
    return arrays


def write_table(path, table, float_format=None):
    """A pandas DataFrame as CSV (no index column, \\n line ends), written atomically."""
    atomic_write_text(path, table.to_csv(index=False, lineterminator="\n", float_format=float_format))


def write_csv(path, header, rows):
    import pandas as pd
    write_table(path, pd.DataFrame(list(rows), columns=header))


def write_probabilities(path, filenames, true_labels, probabilities, labels):
    """One row per clip: filename, true and predicted label, then one probability column per class."""
    import pandas as pd
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(len(filenames), len(labels))
    table = pd.DataFrame({"filename": list(filenames), "true_label": list(true_labels),
                          "predicted_label": [labels[i] for i in probabilities.argmax(axis=1)]})
    write_table(path, pd.concat([table, pd.DataFrame(probabilities, columns=list(labels))], axis=1), "%.8g")


def read_probabilities(path, labels, filenames=None):
    """-> (filenames, true labels, probabilities array in `labels` order); DamagedFile when the file is cut
    short, lacks a column, holds rows that are not probabilities, or (given `filenames`) other clips."""
    import pandas as pd
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if not raw.endswith(b"\n"):
            raise ValueError("it does not end with a complete line")
        table = pd.read_csv(io.BytesIO(raw), dtype={"filename": str, "true_label": str, "predicted_label": str},
                            keep_default_na=False)
        probabilities = table[list(labels)].to_numpy(dtype=np.float64)
        if not (np.isfinite(probabilities).all() and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)):
            raise ValueError("a row's probabilities do not sum to 1")
        if filenames is not None and table["filename"].tolist() != list(filenames):
            raise ValueError(f"it lists {len(table)} clips, not the {len(filenames)} expected")
    except (OSError, ValueError, KeyError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DamagedFile(path, str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__) from None
    return table["filename"].tolist(), table["true_label"].tolist(), probabilities.reshape(len(table), len(labels))


def probabilities_intact(path, labels, filenames=None):
    return intact(read_probabilities, path, labels, filenames)


def write_yaml(path, data):
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def read_yaml(path):
    """A YAML mapping; DamagedFile when the file is not one (cut short, overwritten)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise DamagedFile(path, f"not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise DamagedFile(path, "not a YAML mapping")
    return data
