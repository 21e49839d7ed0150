"""Keras model -> TFLite flatbuffer in four formats: float32, float16, dynamic-range int8, full int8."""
import contextlib
import io
import warnings

import numpy as np

from .. import interrupts
from .formats import FEATURE_FORMATS as FORMATS
from ..runtime import quiet_native_output, strided_depthwise_ops, tf


def logits_model(model):
    """The model as exported: without its final softmax, and with recurrent layers unrolled.

    An int8 softmax output has steps of 1/256, so every probability under that becomes exactly 0 (and
    the log loss explodes); int8 logits keep the information, and softmax on the dequantized logits gives
    the probabilities. On a device the argmax of the logits is the class, as before. A GRU or LSTM loop
    is a TensorList op that the converter rejects; unrolled over the fixed number of frames it becomes
    plain builtin ops (the weights and the arithmetic are the same)."""
    from ..models.builder import map_config, rebuilt
    config = map_config(model.get_config(), lambda node: dict(node, unroll=True) if "unroll" in node else node)
    last = config["layers"][-1]["config"]
    if last.get("activation") == "softmax":
        config["layers"][-1]["config"] = dict(last, activation="linear")
    return rebuilt(model, config)


def convert(model, fmt, representative=None, strip_strings=True):
    """Return the .tflite bytes of `model` up to its logits (see logits_model). `representative`
    (clips, n_mels, n_frames), normalized training features, is required for the full-integer format:
    it calibrates every activation's range."""
    converter = tf.lite.TFLiteConverter.from_keras_model(logits_model(model))
    if fmt == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif fmt == "dynamic_int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif fmt == "int8":
        if representative is None or len(representative) == 0:
            raise ValueError("the full-integer format needs representative features")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x[np.newaxis, ..., np.newaxis].astype(np.float32)]
                                                    for x in representative)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif fmt != "float32":
        raise ValueError(f"unknown TFLite format {fmt!r}; use one of {', '.join(FORMATS)}")
    with quiet_conversion(), strided_depthwise_ops():
        flatbuffer = converter.convert()
    return without_names(flatbuffer) if strip_strings else flatbuffer


@contextlib.contextmanager
def quiet_conversion():
    """The converter prints the traced signature and calibration notices; none of it is for the user. And
    it is not interrupted halfway (interrupts.deferred)."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), quiet_native_output((1, 2)), \
            interrupts.deferred():
        warnings.simplefilter("ignore")
        yield


def without_names(flatbuffer):
    """Drop tensor and graph names (a few KB that a device never reads); the arithmetic is unchanged."""
    from tensorflow.lite.tools import flatbuffer_utils
    model = flatbuffer_utils.read_model_from_bytearray(flatbuffer)
    flatbuffer_utils.strip_strings(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def representative_sample(features, count, seed):
    """`count` clips drawn without replacement (all of them if there are fewer)."""
    rng = np.random.default_rng(seed)
    index = rng.permutation(len(features))[:count]
    return features[np.sort(index)]
