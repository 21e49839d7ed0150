"""The pretrained family: a keras.applications backbone (ImageNet weights, none, or a weights file) on log-mel
spectrograms, global average pooling, dropout and a new softmax head.

The log-mel image (n_mels, n_frames, 1), already normalized to zero mean and unit variance per band, becomes
the backbone's input in three steps, all layers inside the model (so TFLite files and predictions see them):
1. three channels: the log-mel repeated (`channels: repeat`; the pretrained first layer then sees the grey
   image it mostly responds to), or log-mel, delta and delta-delta (`channels: deltas`; fixed 9-frame
   regression kernels, each scaled to unit norm so that the three channels have comparable ranges);
2. resized to `input_size` (bilinear): ImageNet filters were learned on objects a few dozen pixels wide and the
   backbones halve the image five times, so 40 mel rows would leave one or two rows to the last block;
3. rescaled per channel to the mean and standard deviation of an ImageNet image channel *as that backbone
   sees it*: raw pixels for the networks that preprocess inside (EfficientNet, MobileNetV3), mean-free pixels
   for the 'caffe' ones (VGG, ResNet), unit scale for the 'torch' ones (DenseNet), [-1, 1] for the 'tf' ones
   (MobileNetV2). A spectrogram then lands where the pretrained filters expect their inputs.

The backbone is one nested model named `backbone`; its blocks (for unfreezing the last K) are the runs of
layers that share a block prefix in their names (block3_conv1, block2a_expand, expanded_conv_4_...).
"""
import os
import re
import warnings

import numpy as np

from ..errors import UserError
from .blocks import delta_channels

# ImageNet's RGB channel mean and standard deviation in pixels (0-255).
_MEAN, _STD = np.array([123.68, 116.78, 103.94]), np.array([58.40, 57.12, 57.38])
# What each backbone's first layer expects: (mean, std) per channel of an ImageNet image after its preprocessing.
INPUT_SPACES = {
    "pixels": (_MEAN, _STD),                    # the model rescales inside (include_preprocessing)
    "caffe": (np.zeros(3), _STD[::-1]),         # BGR, ImageNet mean subtracted
    "torch": (np.zeros(3), np.ones(3)),         # scaled to 0-1, standardized per channel
    "tf": (_MEAN / 127.5 - 1, _STD / 127.5),    # scaled to [-1, 1]
}
BACKBONES = {"VGG16": "caffe", "VGG19": "caffe", "ResNet50": "caffe", "DenseNet121": "torch",
             "MobileNetV2": "tf", "MobileNetV3Small": "pixels", "MobileNetV3Large": "pixels",
             "EfficientNetB0": "pixels", "EfficientNetB1": "pixels"}
CHANNELS = ("repeat", "deltas")
_BLOCK = re.compile(r"^(block\d+[a-z]?|block_\d+|expanded_conv(?:_\d+)?|conv\d+_block\d+)_")


def check(family, spec):
    """The family's settings, checked without building anything: one sentence for the first that is wrong."""
    where = f"learner.families.{family}"
    if spec.get("backbone") not in BACKBONES:
        raise UserError(f"{where}.backbone is {spec.get('backbone')!r}; use one of: {', '.join(BACKBONES)}.")
    if spec.get("channels", "repeat") not in CHANNELS:
        raise UserError(f"{where}.channels is {spec.get('channels')!r}; use repeat or deltas.")
    size = spec.get("input_size")
    if size is not None and not (isinstance(size, list) and len(size) == 2
                                 and all(isinstance(s, int) and s >= 32 for s in size)):
        raise UserError(f"{where}.input_size is {size!r}; give [height, width] of at least 32 pixels each, "
                        "or null to keep the log-mel image's size.")
    weights = weights_setting(spec)
    if not isinstance(weights, str) or not weights:
        raise UserError(f"{where}.weights is {weights!r}; use imagenet, none, or the path of a weights file.")
    if weights not in ("imagenet", "none") and not os.path.isfile(weights):
        raise UserError(f"{where}.weights is {weights}, which does not exist; give the path of a weights file "
                        f"({spec['backbone']} without its top, as saved by save_weights), imagenet, or none.")
    return where


def weights_setting(spec):
    """imagenet (the default), none (also for null), or a path."""
    weights = spec.get("weights", "imagenet")
    return "none" if weights is None else weights


def build(keras, inputs, family, spec, n_classes):
    """The class probabilities of the log-mel `inputs` through the adapter, the backbone and the new head."""
    where = check(family, spec)
    L = keras.layers
    x = _three_channels(L, inputs, spec.get("channels", "repeat"))
    if spec.get("input_size"):
        x = L.Resizing(*spec["input_size"], interpolation="bilinear", name="to_image_size")(x)
    mean, std = INPUT_SPACES[BACKBONES[spec["backbone"]]]
    x = L.Normalization(mean=mean.tolist(), variance=(std ** 2).tolist(), invert=True, name="to_image_scale")(x)
    net = backbone(keras, spec, tuple(x.shape[1:]), where)
    x = L.GlobalAveragePooling2D(name="pool")(net(x))
    if spec.get("dropout"):
        x = L.Dropout(spec["dropout"])(x)
    return L.Dense(n_classes, activation="softmax", dtype="float32", name="classes")(x)


def _three_channels(L, x, channels):
    if channels == "repeat":
        return L.Concatenate(name="to_image_channels")([x, x, x])
    return delta_channels(L, x, name="to_image_channels")


def backbone(keras, spec, input_shape, where):
    """The keras.applications network without its top, named `backbone`, with the weights the spec names."""
    weights = {"none": None}.get(weights_setting(spec), weights_setting(spec))
    options = dict(spec.get("options") or {})
    make = getattr(keras.applications, spec["backbone"])
    try:
        with warnings.catch_warnings():  # "weights for input shape (224, 224) will be loaded": as meant
            warnings.filterwarnings("ignore", message=".*input shape.*", category=UserWarning)
            net = make(include_top=False, weights=weights, input_shape=input_shape, **options)
    except TypeError as e:
        raise UserError(f"{where}.options: {spec['backbone']} does not take {options} ({e}).") from None
    except ValueError as e:
        if weights in (None, "imagenet"):
            raise UserError(f"{where}: {spec['backbone']} cannot be built on a {input_shape} input with "
                            f"{options or 'its defaults'} ({e}); change input_size or options.") from None
        raise UserError(f"{where}.weights is {weights}, which does not fit {spec['backbone']} with these options "
                        f"({e}); give weights saved from the same backbone without its top.") from None
    except Exception as e:  # noqa: BLE001  (keras.utils.get_file wraps every download failure in Exception)
        if weights != "imagenet":
            raise
        raise UserError(_download_problem(spec["backbone"], where, e)) from None
    net.name = "backbone"  # the fine-tuning schedule finds it by this name
    return net


def keras_cache():
    """Where keras.utils.get_file keeps downloads: $KERAS_HOME, else ~/.keras, else (not writable) /tmp/.keras."""
    home = os.path.expanduser(os.environ.get("KERAS_HOME", os.path.join("~", ".keras")))
    return home if os.access(home, os.W_OK) or not os.path.exists(home) else os.path.join("/tmp", ".keras")


def _download_problem(name, where, error):
    found = re.search(r"URL fetch failure on (\S+):", str(error))
    folder = os.path.join(keras_cache(), "models")
    if not found:
        return (f"{where}.weights is imagenet, but Keras could not load the ImageNet weights of {name} ({error}); "
                f"place them in {folder}, or set {where}.weights to a weights file's path.")
    url = found.group(1)
    return (f"{where}.weights is imagenet, but the ImageNet weights of {name} could not be downloaded; place "
            f"{url.rsplit('/', 1)[-1]} (from {url}) in {folder}, or set {where}.weights to that file's path.")


def blocks(net):
    """The backbone's layers in blocks: [(block name, [layers])], the stem first (named 'stem'). A layer belongs
    to the latest block whose prefix the names so far have shown, so a backbone's top layers join its last block."""
    groups = [("stem", [])]
    for layer in net.layers:
        found = _BLOCK.match(layer.name)
        if found and found.group(1) != groups[-1][0]:
            groups.append((found.group(1), []))
        groups[-1][1].append(layer)
    return groups if groups[0][1] else groups[1:]


def find_backbone(model):
    """The nested backbone of a pretrained-family model, or None for the other families."""
    return next((layer for layer in model.layers if layer.name == "backbone" and hasattr(layer, "layers")), None)
