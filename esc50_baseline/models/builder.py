"""Keras models from the YAML: the DCASE conv families (cnn3/4/5), the seed families (see
architectures.py, chosen by a family's `type`) or an explicit list of Keras layers.

A DCASE family is turned into the same explicit layer list a user could write, so one builder serves both.
Pool sizes adapt to the input: `null` means the whole remaining axis, and a pool larger than what is
left is clamped to it (DCASE's pools were sized for 500 frames; an ESC-50 clip gives 251).
"""
import copy

from ..errors import UserError
from . import architectures, pretrained
from .blocks import adapt_pool


def family_layers(learner, family):
    """The explicit layer list of a conv family (Conv2D-BN-activation, pool + dropout where named)."""
    spec = learner["families"][family]
    pools = {int(k): v for k, v in (spec.get("pools") or {}).items()}
    layers = []
    for i, filters in enumerate(spec["filters"], start=1):
        layers += [
            {"class_name": "Conv2D", "config": {"filters": filters, "kernel_size": learner["kernel_size"],
                                                "padding": "same",
                                                "kernel_initializer": learner["conv_initializer"]}},
            {"class_name": "BatchNormalization", "config": {"axis": -1}},
            {"class_name": "Activation", "config": {"activation": learner["conv_activation"]}},
        ]
        if i in pools:
            layers += [{"class_name": "MaxPooling2D", "config": {"pool_size": pools[i]}},
                       {"class_name": "Dropout", "config": {"rate": learner["conv_dropout"]}}]
    layers.append({"class_name": "Flatten", "config": {}})
    for units in learner["dense_units"]:
        layers += [{"class_name": "Dense", "config": {"units": units, "activation": learner["dense_activation"],
                                                      "kernel_initializer": learner["dense_initializer"]}},
                   {"class_name": "Dropout", "config": {"rate": learner["dense_dropout"]}}]
    layers.append({"class_name": "Dense", "config": {"units": "CLASS_COUNT", "activation": "softmax",
                                                     "kernel_initializer": learner["dense_initializer"]}})
    return layers


def layer_list(learner):
    model = learner["model"]
    if model == "layers":
        if not isinstance(learner.get("layers"), list) or not learner["layers"]:
            raise UserError("learner.model is 'layers' but learner.layers is not a list of layers; "
                            "give a list of {class_name, config} entries.")
        return copy.deepcopy(learner["layers"])
    if model not in (learner.get("families") or {}):
        known = ", ".join(list(learner.get("families") or {}) + ["layers"])
        raise UserError(f"learner.model is '{model}', which is not a family under learner.families; "
                        f"use one of: {known}.")
    return family_layers(learner, model)


def check_model(learner):
    """What can be checked of the model's settings before anything is built (a family's keys against its type, a
    pretrained family's backbone name and weights file): one sentence for the first problem."""
    spec = (learner.get("families") or {}).get(learner["model"])
    if isinstance(spec, dict) and spec.get("type", "dcase") != "dcase":
        architectures.check(learner["model"], spec)
    if isinstance(spec, dict) and spec.get("type") == "pretrained":
        pretrained.check(learner["model"], spec)


def build_model(learner, input_shape, n_classes):
    """A compiled-ready keras.Model: input (n_mels, n_frames, 1), softmax over n_classes."""
    from .. import runtime  # noqa: F401  (first: its TensorFlow settings)
    import keras
    inputs = keras.Input(shape=tuple(input_shape) + (1,), name="log_mel")
    spec = (learner.get("families") or {}).get(learner["model"])
    if isinstance(spec, dict) and spec.get("type", "dcase") != "dcase":
        outputs = architectures.build(keras, inputs, learner["model"], spec, n_classes)
        return keras.Model(inputs, outputs, name=learner["model"])
    x = inputs
    specs = layer_list(learner)
    for i, spec in enumerate(specs):
        x = _make_layer(keras, spec, x, n_classes, last=(i == len(specs) - 1))(x)
    return keras.Model(inputs, x, name=learner["model"])


def _make_layer(keras, spec, x, n_classes, last):
    if not isinstance(spec, dict) or "class_name" not in spec:
        raise UserError(f"Layer entry {spec!r} in learner.layers needs a class_name (and optional config).")
    name = spec["class_name"]
    config = {k: (n_classes if v == "CLASS_COUNT" else v) for k, v in (spec.get("config") or {}).items()}
    config.pop("input_shape", None)  # the input shape comes from the features
    if name in ("MaxPooling2D", "AveragePooling2D") and "pool_size" in config:
        config["pool_size"] = adapt_pool(config["pool_size"], x.shape[1:3])
    if last:
        config["dtype"] = "float32"  # softmax in float32 even under mixed precision
    cls = getattr(keras.layers, name, None)
    if cls is None:
        raise UserError(f"learner.layers names '{name}', which is not a Keras layer class.")
    try:
        return cls(**config)
    except (TypeError, ValueError) as e:
        raise UserError(f"learner.layers: {name} does not accept config {config} ({e}).")


def map_config(node, edit):
    """A Keras config tree with `edit` applied to every mapping in it, innermost first."""
    if isinstance(node, dict):
        return edit({k: map_config(v, edit) for k, v in node.items()})
    if isinstance(node, list):
        return [map_config(v, edit) for v in node]
    return node


def rebuilt(model, config):
    """The model built from `config` with the same weights; the model itself when nothing changed."""
    import keras
    if config == model.get_config():
        return model
    copy = keras.Model.from_config(config)
    copy.set_weights(model.get_weights())
    return copy
