"""How long a model takes for one clip: batch 1 on one core, after a warm-up call; the Keras model through a traced
graph, as a server would run it."""
import contextlib
import os
import time

import numpy as np


@contextlib.contextmanager
def one_core():
    """Pin this process to one core while timing, so latency means 'batch 1 on one core'."""
    if not hasattr(os, "sched_getaffinity"):
        yield
        return
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(saved)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


def keras_predict_one(model):
    """clip -> the Keras model's output for it, through a traced graph: an eager call spends about 15 times the
    network's own time in Keras's dispatch (40 against 2.5 ms a clip for `mobile_wide_lean`), which no server pays."""
    import tensorflow as tf
    graph = tf.function(lambda batch: model(batch, training=False))
    return lambda clip: graph(clip[np.newaxis, ..., np.newaxis])


def latency_ms(predict_one, x, count):
    """Mean milliseconds of one clip's prediction (batch 1, one core), after one warm-up call."""
    x = x[:count]
    if not len(x):
        return float("nan")
    with one_core():
        predict_one(x[0])
        started = time.perf_counter()
        for clip in x:
            predict_one(clip)
        return 1000 * (time.perf_counter() - started) / len(x)
