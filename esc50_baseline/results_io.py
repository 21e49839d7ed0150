"""Result files: probability CSVs and YAML, always written to a temporary name and then renamed."""
import csv
import io

import numpy as np
import yaml

from .atomic import write_text as atomic_write_text


def write_probabilities(path, filenames, true_labels, probabilities, labels):
    """One row per clip: filename, true and predicted label, then one probability column per class."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["filename", "true_label", "predicted_label"] + list(labels))
    for name, truth, p in zip(filenames, true_labels, probabilities):
        writer.writerow([name, truth, labels[int(np.argmax(p))]] + [f"{v:.8g}" for v in p])
    atomic_write_text(path, out.getvalue())


def read_probabilities(path, labels):
    """-> (filenames, true labels, probabilities array in `labels` order)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    filenames = [r["filename"] for r in rows]
    truth = [r["true_label"] for r in rows]
    probabilities = np.array([[float(r[label]) for label in labels] for r in rows], dtype=np.float64)
    return filenames, truth, probabilities.reshape(len(rows), len(labels))


def write_yaml(path, data):
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def read_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def write_csv(path, header, rows):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(path, out.getvalue())
