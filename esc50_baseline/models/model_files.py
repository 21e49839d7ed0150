"""A trained model's file: saved atomically as float32, checked before it is read, loaded, and run.

Its own module so that whatever reads models (testing, distillation's teachers, TFLite conversion,
prediction) need not import the training loop.
"""
import zipfile

import numpy as np

from ..atomic import atomic_path
from ..errors import UserError


def as_float32(model):
    """The same model with float32 computation everywhere. Mixed precision keeps the variables in
    float32 already, so the weights carry over exactly; testing, TFLite conversion (which cannot take
    bfloat16 ops) and prediction then see one float32 model, whatever precision it was trained in."""
    from .builder import map_config, rebuilt

    def float32_policy(node):
        if node.get("class_name") == "DTypePolicy":
            return dict(node, config=dict(node["config"], name="float32"))
        return node

    return rebuilt(model, map_config(model.get_config(), float32_policy))


def save_model_atomic(model, path):
    with atomic_path(path, ".keras") as tmp:  # Keras insists on the .keras suffix
        model.save(tmp)


def model_file_problem(path):
    """Why a saved .keras file cannot be what was written (None when it is whole): it is a zip archive,
    and every member's CRC-32 is checked."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except Exception as e:  # noqa: BLE001  (zipfile meets damage with a dozen exception types)
        return str(e) or type(e).__name__
    return f"its member {bad} fails its CRC check" if bad else None


def load_model(path, stage="learning"):
    """A saved model for testing, conversion or prediction; a damaged file is named, with what to do."""
    from .. import runtime  # noqa: F401  (first: its TensorFlow settings)
    import keras
    problem = model_file_problem(path)
    if problem:
        raise UserError(f"The model {path} is damaged ({problem}); delete it and run task_esc50.py again with "
                        f"flow.{stage} on to make it anew.")
    return keras.models.load_model(path, compile=False)


def predict(model, x, batch_size=64):
    """Class probabilities (float64) for features (clips, n_mels, n_frames), in plain batches."""
    out = [np.asarray(model(x[i:i + batch_size, ..., np.newaxis], training=False), dtype=np.float64)
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, model.output_shape[-1]))
