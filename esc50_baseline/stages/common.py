"""What the stages share: a heading per stage, when a cached output is stale, and the probability files that
testing writes and evaluation reads."""
import os

import numpy as np

from .. import results_io
from ..progress import section  # noqa: F401  (re-exported: every stage opens with one)
from ..run.context import KERAS, cached_entry, need


def stale(output, *inputs):
    """True when `output` is missing or older than any existing input it was computed from."""
    if not os.path.exists(output):
        return True
    mtime = os.path.getmtime(output)
    return any(os.path.exists(i) and os.path.getmtime(i) > mtime for i in inputs)


def predictions_cached(ctx, out, fold, *inputs):
    """True when a fold's prediction file can be reused: not --overwrite, newer than its inputs, and intact."""
    return not ctx.overwrite and not stale(out, *inputs) and results_io.probabilities_intact(
        out, ctx.dataset.labels, [c.filename for c in ctx.dataset.test(fold)])


def write_fold_predictions(ctx, path, clips, probabilities):
    labels = ctx.dataset.labels
    truth = [labels[i] for i in ctx.dataset.target_index(clips)]
    results_io.write_probabilities(path, [c.filename for c in clips], truth, probabilities, labels)


def load_predictions(ctx, fmt=KERAS):
    """{fold: (true class indices, probabilities)} from the probability CSVs of the active folds, of the float
    model or of one TFLite format."""
    labels = ctx.dataset.labels
    index = {label: i for i, label in enumerate(labels)}
    per_fold = {}
    for fold in ctx.folds:
        path = need(ctx.predictions_path(fold, fmt), "testing" if fmt == KERAS else "tflite_testing")
        _names, truth, probabilities = cached_entry(results_io.read_probabilities, path, labels,
                                                    [c.filename for c in ctx.dataset.test(fold)])
        per_fold[fold] = (np.array([index[t] for t in truth], dtype=np.int64), probabilities)
    return per_fold
