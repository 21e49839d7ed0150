"""The efficient family: inverted-residual blocks in the manner of CPJKU's CP-Mobile (DCASE 2023 task 1)
and MobileNetV2, built from builtin Keras layers only, so that every model converts to full-integer TFLite.

A stem of strided 3x3 convolutions shrinks the log-mel image; then stages of blocks, each a 1x1
expansion, a 3x3 depthwise convolution (strided where `strides` says) and a 1x1 projection, with an
identity (or average-pooled) shortcut where the block keeps its width; stage widths grow by
`width_multiplier` from `base_filters`. The head is CP-Mobile's: a 1x1 convolution to one map per class
and global average pooling (or `pooling: mean_max`, see blocks.global_pool), so the parameters sit in the
blocks, not in a dense classifier.

Every convolution is followed by batch normalization unless `depthwise_batch_norm: false`, which gives the
depthwise ones a bias instead: normalization is a third of this family's training step on a CPU, and a
converted model folds it away, so only training pays for it.
"""
from .blocks import global_pool


def _round8(value):
    """Widths in multiples of 8 (vector units and int8 kernels prefer them), never below 8."""
    return max(8, int(value + 4) // 8 * 8)


def stage_widths(spec):
    base = _round8(spec["base_filters"])
    return [_round8(base * spec["width_multiplier"] ** stage) for stage in range(len(spec["blocks"]))]


def _conv_bn(L, x, filters, kernel=1, strides=1, relu=True, depthwise=False, norm=True):
    if depthwise:
        x = L.DepthwiseConv2D(kernel, strides=strides, padding="same", use_bias=not norm)(x)
    else:
        x = L.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=not norm)(x)
    if norm:
        x = L.BatchNormalization()(x)
    return L.ReLU()(x) if relu else x


def inverted_residual(L, x, filters, expansion, strides, depthwise_norm):
    """1x1 expand, 3x3 depthwise, 1x1 project; the input added back when the width is kept."""
    width = x.shape[-1]
    y = _conv_bn(L, x, _round8(width * expansion))
    y = _conv_bn(L, y, None, kernel=3, strides=strides, depthwise=True, norm=depthwise_norm)
    y = _conv_bn(L, y, filters, relu=False)
    if width != filters:
        return L.ReLU()(y)
    shortcut = x if tuple(strides) == (1, 1) else L.AveragePooling2D(3, strides=strides, padding="same")(x)
    return L.ReLU()(L.Add()([y, shortcut]))


def mobile(L, x, spec, n_classes):
    stem = spec.get("stem_strides", [[2, 2], [2, 2]])
    widths = stage_widths(spec)
    narrow = spec.get("stem_filters") or widths[0] // 4  # the stem's convolutions before its last
    for i, strides in enumerate(stem):
        x = _conv_bn(L, x, narrow if i < len(stem) - 1 else widths[0], kernel=3, strides=tuple(strides))
    strided = {int(k): tuple(v) for k, v in (spec.get("strides") or {}).items()}
    block = 0
    for width, count in zip(widths, spec["blocks"]):
        for _ in range(count):
            block += 1
            x = inverted_residual(L, x, width, spec["expansion"], strided.get(block, (1, 1)),
                                  spec.get("depthwise_batch_norm", True))
    if spec.get("dropout"):
        x = L.Dropout(spec["dropout"])(x)
    x = L.Conv2D(n_classes, 1, use_bias=False)(x)
    x = L.BatchNormalization()(x)
    x = global_pool(L, x, spec.get("pooling"))
    return L.Activation("softmax", dtype="float32", name="classes")(x)
