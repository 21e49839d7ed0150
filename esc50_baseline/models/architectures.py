"""The seed model families that are not a plain stack of layers: residual, recurrent, attention.

Each builder takes the log-mel input tensor (batch, n_mels, n_frames, 1) and its family's settings from
`learner.families` in the YAML, and returns the class probabilities. All of them end in one softmax
layer in float32 (mixed precision keeps the loss stable; the TFLite export strips that softmax).
"""
from ..errors import UserError
from .blocks import POOLINGS, classifier, conv_bn_relu, delta_channels, global_pool, max_pool
from .mobile import mobile
from . import pretrained


def vgg(L, x, spec, n_classes):
    """Conv-BN-ReLU layers; stride 2 at the layers listed in `strides` (1-based) and a 2x2 max pool
    after those in `pools`; then global pooling (`pooling`, average by default) and the classifier."""
    strides, pools = set(spec.get("strides", [])), set(spec.get("pools", []))
    for i, filters in enumerate(spec["filters"], start=1):
        x = conv_bn_relu(L, x, filters, spec.get("kernel_size", 3), 2 if i in strides else 1)
        if i in pools:
            x = max_pool(L, x, 2)
    x = global_pool(L, x, spec.get("pooling"))
    return classifier(L, x, n_classes, spec.get("dropout", 0.0))


def resnet(L, x, spec, n_classes):
    """ResNet-18 style: a conv stem and a 2x2 max pool, then stages of basic residual blocks (two 3x3
    convs), each stage after the first starting with stride 2; global pooling (average by default)."""
    x = conv_bn_relu(L, x, spec["stem_filters"])
    x = max_pool(L, x, 2)
    for stage, filters in enumerate(spec["filters"]):
        for block in range(spec["blocks_per_stage"]):
            strides = 2 if stage > 0 and block == 0 else 1
            shortcut = x
            y = conv_bn_relu(L, x, filters, strides=strides)
            y = L.Conv2D(filters, 3, padding="same", use_bias=False)(y)
            y = L.BatchNormalization()(y)
            if strides != 1 or shortcut.shape[-1] != filters:
                shortcut = L.Conv2D(filters, 1, strides=strides, use_bias=False)(shortcut)
                shortcut = L.BatchNormalization()(shortcut)
            x = L.Activation("relu")(L.Add()([y, shortcut]))
    x = global_pool(L, x, spec.get("pooling"))
    return classifier(L, x, n_classes, spec.get("dropout", 0.0))


def _frames_as_sequence(L, x):
    """(batch, freq, time, channels) -> (batch, time, freq * channels)."""
    _, freq, time, channels = x.shape
    return L.Reshape((time, freq * channels))(L.Permute((2, 1, 3))(x))


def crnn_att(L, x, spec, n_classes):
    """CRNN with attention: conv blocks (conv + 2x2 max pool), the frequency axis averaged away, a
    bidirectional GRU over time, and attention pooling (a softmax over time of a learned score)."""
    for filters in spec["filters"]:
        x = conv_bn_relu(L, x, filters)
        x = max_pool(L, x, 2)
    x = L.AveragePooling2D((x.shape[1], 1))(x)
    x = _frames_as_sequence(L, x)
    x = L.Bidirectional(L.GRU(spec["gru_units"], return_sequences=True))(x)
    weights = L.Softmax(axis=1)(L.Dense(1)(x))
    x = L.Flatten()(L.Dot(axes=1)([weights, x]))
    return classifier(L, x, n_classes, spec.get("dropout", 0.0))


def lstm(L, x, spec, n_classes):
    """One LSTM over the mel frames (each frame's mel vector is one step); its last state is classified
    by a dense hidden layer and the softmax."""
    x = _frames_as_sequence(L, x)
    x = L.LSTM(spec["units"])(x)
    x = L.Dense(spec["dense_units"], activation="relu")(x)
    return classifier(L, x, n_classes, spec.get("dropout", 0.0))


def kumar(L, x, spec, n_classes):
    """Kumar et al. 2018: pairs of 3x3 conv (each pair followed by a 2x2 max pool), then single convs
    (3x3, pooled; the last one 2x2), a 1x1 conv to one map per class, global pooling, softmax."""
    for filters in spec["pairs"]:
        x = conv_bn_relu(L, conv_bn_relu(L, x, filters), filters)
        x = max_pool(L, x, 2)
    for i, filters in enumerate(spec["convs"]):
        last = i == len(spec["convs"]) - 1
        x = conv_bn_relu(L, x, filters, kernel=2 if last else 3)
        if not last:
            x = max_pool(L, x, 2)
    if spec.get("dropout"):
        x = L.Dropout(spec["dropout"])(x)
    x = L.Conv2D(n_classes, 1)(x)
    return L.Activation("softmax", dtype="float32", name="classes")(global_pool(L, x, spec.get("pooling")))


BUILDERS = {"vgg": vgg, "resnet": resnet, "crnn_att": crnn_att, "lstm": lstm, "kumar": kumar, "mobile": mobile}
SWITCHES = ("depthwise_batch_norm",)  # family settings that are true or false: a misspelt word must not pass as true
# the settings each type reads besides `type`: any other key is misspelt or belongs to another type
KEYS = {"vgg": ("filters", "strides", "pools", "kernel_size", "pooling", "dropout", "channels"),
        "resnet": ("stem_filters", "filters", "blocks_per_stage", "pooling", "dropout", "channels"),
        "crnn_att": ("filters", "gru_units", "dropout", "channels"),
        "lstm": ("units", "dense_units", "dropout", "channels"),
        "kumar": ("pairs", "convs", "pooling", "dropout", "channels"),
        "mobile": ("base_filters", "width_multiplier", "expansion", "blocks", "strides", "stem_strides", "stem_filters",
                   "depthwise_batch_norm", "pooling", "dropout", "channels"),
        "pretrained": ("backbone", "weights", "options", "input_size", "channels", "dropout")}


def _count(v):
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _positive(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


# numbers a type would otherwise round or replace without a word (a width of 0 became 8)
POSITIVE = {"mobile": (("base_filters", _count, "a whole number of channels above 0, e.g. 32"),
                       ("stem_filters", _count, "a whole number of channels above 0, e.g. 8"),
                       ("width_multiplier", _positive, "a number above 0, e.g. 2"),
                       ("expansion", _positive, "a number above 0, e.g. 3"),
                       ("blocks", lambda v: isinstance(v, list) and v and all(map(_count, v)),
                        "a list of block counts above 0, one per stage, e.g. [3, 2, 1]"))}
# what a network of one of the BUILDERS types sees: the log-mel alone, or with its delta and delta-delta
CHANNELS = ("log_mel", "deltas")


def check(family, spec):
    """A family's settings against its type, before anything is built: one sentence for the first problem."""
    kind = spec.get("type")
    if kind not in BUILDERS and kind != "pretrained":
        raise UserError(f"learner.families.{family}.type is {kind!r}; use one of: dcase, {', '.join(BUILDERS)}, "
                        "pretrained.")
    for switch in SWITCHES:
        if switch in spec and not isinstance(spec[switch], bool):
            raise UserError(f"learner.families.{family}.{switch} is {spec[switch]!r}; use true or false.")
    unread = sorted(set(spec) - {"type"} - set(KEYS[kind]))
    if unread:
        raise UserError(f"learner.families.{family}.{unread[0]} is not a setting of a network of type {kind}; "
                        f"remove it or use one of: {', '.join(KEYS[kind])}.")
    if spec.get("pooling") not in (None,) + POOLINGS:
        raise UserError(f"learner.families.{family}.pooling is {spec['pooling']!r}; use one of: "
                        f"{', '.join(POOLINGS)}.")
    for key, test, wanted in POSITIVE.get(kind, ()):
        if key in spec and not test(spec[key]):
            raise UserError(f"learner.families.{family}.{key} is {spec[key]!r}; use {wanted}.")
    if kind != "pretrained" and spec.get("channels", "log_mel") not in CHANNELS:
        raise UserError(f"learner.families.{family}.channels is {spec['channels']!r}; use one of: "
                        f"{', '.join(CHANNELS)}.")


def build(keras, inputs, family, spec, n_classes):
    check(family, spec)
    kind = spec["type"]
    try:
        if kind == "pretrained":  # it needs keras.applications, and its family's name for its messages
            return pretrained.build(keras, inputs, family, spec, n_classes)
        if spec.get("channels") == "deltas":
            inputs = delta_channels(keras.layers, inputs)
        return BUILDERS[kind](keras.layers, inputs, spec, n_classes)
    except KeyError as e:
        raise UserError(f"learner.families.{family} (type {kind}) has no setting {e}; add it there.")
