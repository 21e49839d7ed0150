"""The efficient family: its complexity by hand, its shortcuts, full-integer TFLite that agrees with Keras, and
its unequal-stride depthwise convolutions on every device."""
import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import shipped_defaults
from esc50_baseline.errors import UserError
from esc50_baseline.models import model_files
from esc50_baseline import runtime
from esc50_baseline.training import trainer
from esc50_baseline.models.builder import build_model, check_model
from esc50_baseline.models.complexity import (DCASE_MACS_LIMIT, DCASE_SIZE_LIMIT_BYTES, keras_size_report,
                                              spatial_conv_share)
from esc50_baseline.tflite.convert import convert
from esc50_baseline.tflite.run import TFLiteModel
from esc50_baseline.tflite.size import tflite_size_report


def textures(n_per_class, rng):
    """Four classes of local texture anywhere in the image: vertical stripes, horizontal stripes, a
    checkerboard and plain noise (the family's global average head is blind to where a pattern is)."""
    rows, cols = np.indices((40, 50))
    patterns = [np.where(cols % 2, 1.5, -1.5), np.where(rows % 2, 1.5, -1.5), np.where((rows + cols) % 2, 1.5, -1.5),
                np.zeros((40, 50))]
    y = np.repeat(np.arange(4), n_per_class)
    x = rng.normal(0, 1, size=(len(y), 40, 50)) + np.stack([patterns[k] for k in y])
    return x.astype(np.float32), y

TINY = {"type": "mobile", "base_filters": 8, "width_multiplier": 2.0, "expansion": 2.0, "blocks": [1, 1],
        "strides": {2: [2, 2]}, "stem_strides": [[2, 2]], "dropout": 0.0}


def build(spec, input_shape=(8, 16), n_classes=5):
    return build_model({"model": "m", "families": {"m": spec}}, input_shape, n_classes)


def layer_kinds(model):
    return [type(layer).__name__ for layer in model.layers]


def test_tiny_network_macs_and_shortcuts_by_hand():
    model = build(TINY)
    stem = (4 * 8) * 8 * 9                        # 3x3 conv, stride 2: 4 x 8 positions, 1 -> 8 channels
    block1 = (32 * 16 * 8) + (32 * 16 * 9) + (32 * 8 * 16)   # expand 8->16, depthwise 3x3, project 16->8
    block2 = (32 * 16 * 8) + (8 * 16 * 9) + (8 * 16 * 16)    # expand, depthwise with stride 2 (2 x 4 out), project ->16
    head = 8 * 5 * 16                             # 1x1 conv to one map per class
    assert keras_size_report(model)["total"]["macs"] == stem + block1 + block2 + head
    kinds = layer_kinds(model)
    assert kinds.count("DepthwiseConv2D") == 2 and kinds.count("Add") == 1  # block 2 changes width: no shortcut
    assert "AveragePooling2D" not in kinds and model.output_shape == (None, 5)
    # only the stem's 3x3 convolution is one that AMX speeds up in bfloat16 (runtime.auto_precision)
    assert spatial_conv_share(model) == pytest.approx(stem / (stem + block1 + block2 + head))
    strided_same_width = build(dict(TINY, blocks=[2], strides={2: [2, 1]}))
    kinds = layer_kinds(strided_same_width)
    assert kinds.count("Add") == 2 and kinds.count("AveragePooling2D") == 1  # the strided block pools its input


def test_the_stems_first_convolutions_take_the_width_stem_filters_says():
    spec = dict(TINY, stem_strides=[[2, 2], [1, 1]])
    default, wide = build(spec), build(dict(spec, stem_filters=6))
    # a quarter of the first stage's 8 channels is 2: 3x3 convs 1 -> 2 then 2 -> 8 at 4 x 8 positions; 6 instead
    stem_macs = {n: 32 * n * 9 + 32 * 8 * n * 9 for n in (2, 6)}
    assert (keras_size_report(wide)["total"]["macs"] - keras_size_report(default)["total"]["macs"]
            == stem_macs[6] - stem_macs[2])
    convs = [layer for layer in wide.layers if type(layer).__name__ == "Conv2D"]
    assert [c.filters for c in convs[:2]] == [6, 8]


def test_delta_channels_cost_their_convolution_and_triple_the_stems_first_input():
    plain, deltas = build(TINY), build(dict(TINY, channels="deltas"))
    fixed = (8 * 16) * 3 * 9                      # one 1x9 kernel per channel over every bin, 1 -> 3 channels
    stem = (4 * 8) * 8 * 9                        # the first 3x3 convolution, now on three channels
    assert keras_size_report(deltas)["total"]["macs"] == keras_size_report(plain)["total"]["macs"] + fixed + 2 * stem
    layer = deltas.get_layer("delta_channels")
    assert not layer.trainable_weights and layer.kernel.shape == (1, 9, 1, 3)
    parabola = np.tile(np.arange(16, dtype=np.float32), (8, 1))[None, ..., None] ** 2 / 2  # slope t, curvature 1
    out = np.asarray(keras.Model(deltas.input, layer.output)(parabola))[0, :, 4:12]  # clear of the zero padding
    t = np.arange(4, 12, dtype=np.float32)
    np.testing.assert_allclose(out[..., 0], np.broadcast_to(t ** 2 / 2, (8, 8)), rtol=1e-5)  # the log-mel itself
    np.testing.assert_allclose(out[..., 1], np.broadcast_to(t / np.sqrt(0.1), (8, 8)), rtol=1e-5)  # unit-norm delta
    delta = np.array([-2, -1, 0, 1, 2]) / 10
    np.testing.assert_allclose(out[..., 2], 1 / np.linalg.norm(np.convolve(delta, delta)), rtol=1e-4)  # curvature 1


@pytest.mark.parametrize("value", ["mfcc", "repeat", 3])
def test_input_channels_that_are_not_log_mel_or_deltas_are_refused_by_name(value):
    with pytest.raises(UserError, match=f"learner.families.m.channels is {value!r}; use one of: log_mel, deltas"):
        check_model({"model": "m", "families": {"m": dict(TINY, channels=value)}})


def test_without_depthwise_batch_norm_each_depthwise_convolution_gets_a_bias_instead():
    full, lean = build(TINY), build(dict(TINY, depthwise_batch_norm=False))
    assert layer_kinds(full).count("BatchNormalization") - layer_kinds(lean).count("BatchNormalization") == 2
    depthwise = [layer for layer in lean.layers if type(layer).__name__ == "DepthwiseConv2D"]
    assert all(layer.use_bias for layer in depthwise) and len(depthwise) == 2
    # both depthwise layers see 16 channels (8 expanded twice): a normalization holds 4 numbers a channel, a bias 1
    assert full.count_params() - lean.count_params() == 2 * 16 * (4 - 1)
    assert keras_size_report(lean)["total"]["macs"] == keras_size_report(full)["total"]["macs"]


@pytest.mark.parametrize("value", ["flase", "no", 0])
def test_a_depthwise_batch_norm_that_is_not_true_or_false_is_refused_by_name(value):
    with pytest.raises(UserError, match=f"learner.families.m.depthwise_batch_norm is {value!r}; use true or false"):
        build(dict(TINY, depthwise_batch_norm=value))


def test_the_mean_max_head_is_the_frequency_mean_then_the_time_maximum_plus_the_time_mean():
    model = build(dict(TINY, pooling="mean_max"), input_shape=(16, 32))
    class_maps = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"][-1]
    x = np.random.default_rng(0).standard_normal((3, 16, 32)).astype(np.float32)
    maps = keras.Model(model.inputs, class_maps.output).predict(x, verbose=0).astype(np.float64)
    assert maps.shape[1:] == (4, 8, 5)  # frequency, time, classes
    over_frequency = maps.mean(axis=1)
    logits = over_frequency.max(axis=1) + over_frequency.mean(axis=1)
    by_hand = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), by_hand, rtol=1e-5, atol=1e-6)
    plain = np.exp(maps.mean(axis=(1, 2)))  # what the average head would say on the same maps: not this
    assert not np.allclose(by_hand, plain / plain.sum(axis=1, keepdims=True), atol=1e-3)
    assert keras_size_report(model)["total"]["params"] == build(TINY, input_shape=(16, 32)).count_params()


@pytest.mark.parametrize("value", ["mean", "maximum", 1])
def test_a_pooling_that_is_not_one_of_the_heads_is_refused_by_name(value):
    with pytest.raises(UserError, match=f"learner.families.m.pooling is {value!r}; use one of: average, max, "
                                        "mean_max"):
        build(dict(TINY, pooling=value))


@pytest.mark.parametrize("spec, key", [({"type": "lstm", "units": 8, "dense_units": 8, "pooling": "max"}, "pooling"),
                                       (dict(TINY, base_filter=16), "base_filter")])
def test_a_family_setting_its_type_does_not_read_is_refused_by_name(spec, key):
    """A head that does not pool globally, or a misspelt key, would otherwise be ignored without a word; the
    parameter checks find it before any feature is extracted."""
    message = f"learner.families.m.{key} is not a setting of a network of type {spec['type']}; remove it or use one"
    with pytest.raises(UserError, match=message):
        build(spec)
    with pytest.raises(UserError, match=message):
        check_model({"model": "m", "families": {"m": spec}})


@pytest.mark.parametrize("key, value, wanted", [("stem_filters", 0, "a whole number of channels above 0"),
                                               ("base_filters", 16.5, "a whole number of channels above 0"),
                                               ("expansion", 0, "a number above 0"),
                                               ("blocks", [2, 0], "a list of block counts above 0")])
def test_a_width_or_count_the_family_would_round_or_replace_is_refused_by_name(key, value, wanted):
    """A stem of 0 channels used to become the default 8, an expansion of 0 a width of 8, without a word."""
    with pytest.raises(UserError, match=re.escape(f"learner.families.m.{key} is {value!r}; use {wanted}")):
        check_model({"model": "m", "families": {"m": dict(TINY, **{key: value})}})
    assert build(dict(TINY, stem_filters=4, stem_strides=[[2, 2], [1, 1]])).count_params() > 0  # 4 is a width


def test_every_shipped_family_passes_the_checks(defaults):
    families = defaults["learner"]["families"]
    checked = [name for name, spec in families.items() if spec.get("type", "dcase") != "dcase"]
    for name in checked:
        check_model({"model": name, "families": families})
    assert {"mobile_lc", "vgg7", "kumar", "vgg19_imagenet"} <= set(checked)


@pytest.fixture
def amx_cpu(monkeypatch):
    monkeypatch.setattr(runtime, "GPUS", [])
    monkeypatch.setattr(runtime, "cpu_flags", lambda: {"avx512f", "amx_bf16", "amx_tile"})


@pytest.mark.parametrize("model, expected", [("vgg7", "mixed_bfloat16"), ("mobile_lc", False),
                                             ("cnn3", "mixed_bfloat16")])
def test_auto_precision_on_amx_takes_bfloat16_only_for_networks_of_spatial_convolutions(defaults, amx_cpu, model,
                                                                                        expected):
    learner = dict(defaults["learner"], model=model)
    assert runtime.auto_precision(lambda: spatial_conv_share(build_model(learner, (40, 251), 50))) == expected


def test_auto_precision_without_amx_is_float32_and_does_not_build_the_network(monkeypatch):
    monkeypatch.setattr(runtime, "GPUS", [])
    monkeypatch.setattr(runtime, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    assert runtime.auto_precision(lambda: pytest.fail("the network was built where nothing depends on it")) is False


def test_the_network_built_to_choose_the_precision_leaves_no_trace_in_the_trained_one(defaults, amx_cpu):
    learner = dict(defaults["learner"], model="mobile_lc")

    def built(precision, spatial_share=None):
        keras.backend.clear_session()  # as before every fold's training
        description = runtime.setup(5, mixed_precision=precision, spatial_share=spatial_share)
        return description, build_model(learner, (40, 251), 50)

    described, probed = built("auto", lambda: spatial_conv_share(build_model(learner, (40, 251), 50)))
    assert described.endswith("precision float32 (auto)")
    _, plain = built(False)
    assert [layer.name for layer in probed.layers] == [layer.name for layer in plain.layers]
    for a, b in zip(probed.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_the_shipped_low_complexity_network_meets_both_dcase_limits_as_int8(defaults, tmp_path):
    runtime.setup(0)
    learner = dict(defaults["learner"], model="mobile_lc")
    model = build_model(learner, (40, 251), 50)
    keras_total = keras_size_report(model)["total"]
    assert keras_total["macs"] == 26_211_520 and keras_total["params"] == 112_688
    x = np.random.default_rng(0).standard_normal((8, 40, 251)).astype(np.float32)
    path = str(tmp_path / "mobile_lc_int8.tflite")
    with open(path, "wb") as f:
        f.write(convert(model, "int8", representative=x))
    total = tflite_size_report(path)["total"]
    assert total["macs"] == keras_total["macs"]  # batch norm folds into the convolutions; no MAC is lost
    assert total["bytes"] <= DCASE_SIZE_LIMIT_BYTES and total["macs"] <= DCASE_MACS_LIMIT


@pytest.fixture(scope="module", params=[(True, "average", 12, "log_mel"), (False, "average", 12, "log_mel"),
                                        (True, "mean_max", 20, "log_mel"), (True, "average", 12, "deltas")],
                ids=["depthwise_bn", "depthwise_bias", "mean_max_head", "delta_channels"])
def trained_tiny(tmp_path_factory, request):
    defaults = shipped_defaults()
    runtime.setup(0)
    rng = np.random.default_rng(0)
    x, y = textures(20, rng)
    depthwise_batch_norm, pooling, epochs, channels = request.param  # the maximum learns plain noise more slowly
    spec = dict(TINY, blocks=[1, 1], base_filters=16, depthwise_batch_norm=depthwise_batch_norm, pooling=pooling,
                channels=channels)
    learner = dict(defaults["learner"], model="m", families={"m": spec}, epochs=epochs, batch_size=16, verbose=0,
                   learning_rate=0.01, validation_amount=0.0, monitor={"metric": "last", "initial_delay": 0})
    model = build_model(learner, x.shape[1:], 4)
    trainer.train_fold(model, x, y, x[:0], y[:0], 4, learner, 0, str(tmp_path_factory.mktemp("log")))
    return model, x, textures(10, np.random.default_rng(9))


def test_full_integer_tflite_of_the_family_agrees_with_keras(trained_tiny, tmp_path):
    model, x, (xt, yt) = trained_tiny
    keras_predicted = model_files.predict(model, xt).argmax(axis=1)
    assert np.mean(keras_predicted == yt) >= 0.9  # it learned the bands
    path = str(tmp_path / "int8.tflite")
    with open(path, "wb") as f:
        f.write(convert(model, "int8", representative=x))
    int8 = TFLiteModel(path)
    assert int8.input["dtype"] == np.int8 and int8.output["dtype"] == np.int8
    probabilities, _seconds = int8.predict(xt)
    assert np.mean(probabilities.argmax(axis=1) == keras_predicted) >= 0.9
    fixed = [layer for layer in model.layers if layer.name == "delta_channels"]  # the delta_channels case
    for layer in fixed:  # training left the regression kernels as they were built
        np.testing.assert_array_equal(layer.get_weights()[0], build(dict(TINY, channels="deltas")).get_layer(
            "delta_channels").get_weights()[0])


@pytest.fixture
def decomposing(monkeypatch):
    """Unequal-stride depthwise convolutions decomposed, as on a machine whose kernel refuses them (a GPU, or
    a CPU without oneDNN such as an AVX2-only one), on every machine; Keras's rule is restored afterwards."""
    from keras.src.backend.tensorflow import nn
    name = "_needs_depthwise_stride_dilation_decomposition"
    monkeypatch.setattr(nn, name, getattr(nn, name))
    monkeypatch.setitem(runtime._DECOMPOSE, "on", runtime._DECOMPOSE["on"])
    runtime._decompose_unequal_strides()


def same_padded_depthwise(x, kernel, strides):
    """Depthwise convolution with 'same' padding by its definition: TensorFlow pads so that there are
    ceil(n / stride) outputs, the odd padding cell after; (batch, h, w, c) and (kh, kw, c)."""
    pads, outs = [], []
    for n, k, s in zip(x.shape[1:3], kernel.shape[:2], strides):
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
        outs.append(out)
    padded = np.pad(x, [(0, 0), pads[0], pads[1], (0, 0)])
    y = np.zeros((x.shape[0], outs[0], outs[1], x.shape[3]))
    for a in range(kernel.shape[0]):
        for b in range(kernel.shape[1]):
            window = padded[:, a:a + strides[0] * outs[0]:strides[0], b:b + strides[1] * outs[1]:strides[1]]
            y += window * kernel[a, b]
    return y, padded, outs


@pytest.mark.parametrize("strides", [(2, 1), (1, 2)])
@pytest.mark.parametrize("size", [(9, 7), (10, 8)])
def test_a_depthwise_convolution_with_unequal_strides_runs_and_learns_as_defined(decomposing, strides, size):
    import keras
    import tensorflow as tf
    rng = np.random.default_rng(sum(size) + strides[0])
    x = rng.standard_normal((2,) + size + (3,)).astype(np.float32)
    layer = keras.layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False)
    layer.build(x.shape)
    kernel = rng.standard_normal((3, 3, 3, 1)).astype(np.float32)
    layer.set_weights([kernel])
    expected, padded, outs = same_padded_depthwise(x.astype(np.float64), kernel[..., 0].astype(np.float64), strides)
    weight = rng.standard_normal(expected.shape).astype(np.float32)
    with tf.GradientTape() as tape:
        y = layer(x)
        loss = tf.reduce_sum(y * weight)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5)
    gradient = tape.gradient(loss, layer.kernel).numpy()[..., 0]
    by_hand = np.array([[np.sum(weight * padded[:, a:a + strides[0] * outs[0]:strides[0],
                                                b:b + strides[1] * outs[1]:strides[1]], axis=(0, 1, 2))
                         for b in range(3)] for a in range(3)])
    np.testing.assert_allclose(gradient, by_hand, rtol=1e-4, atol=1e-4)


def test_the_converted_model_keeps_each_strided_depthwise_convolution_one_op(decomposing, tmp_path):
    from esc50_baseline.tflite.size import op_name
    from tensorflow.lite.tools import flatbuffer_utils
    model = build(dict(TINY, blocks=[1, 1], strides={2: [2, 1]}), input_shape=(8, 16))
    x = np.random.default_rng(3).standard_normal((4, 8, 16)).astype(np.float32)
    keras_out = model(x[..., np.newaxis], training=False).numpy()  # decomposed here
    path = str(tmp_path / "float32.tflite")
    with open(path, "wb") as f:
        f.write(convert(model, "float32"))
    flat = flatbuffer_utils.read_model(path)
    ops = [op_name(flat, op) for op in flat.subgraphs[0].operators]
    assert ops.count("DEPTHWISE_CONV_2D") == 2 and "STRIDED_SLICE" not in ops and "PAD" not in ops
    assert tflite_size_report(path)["total"]["macs"] == keras_size_report(model)["total"]["macs"]
    probabilities, _seconds = TFLiteModel(path).predict(x)
    np.testing.assert_allclose(probabilities, keras_out, rtol=1e-4, atol=1e-5)


def test_importing_the_runtime_leaves_tensorflows_thread_and_device_settings_open():
    """Whether the depthwise kernels take unequal strides is asked without running an op: an op would fix
    TensorFlow's threads and devices, which a caller (a benchmark's one-thread run) still sets after."""
    code = ("from esc50_baseline import runtime\n"
            "import tensorflow as tf\n"
            "tf.config.threading.set_intra_op_parallelism_threads(1)\n"
            "tf.config.set_logical_device_configuration(tf.config.list_physical_devices('CPU')[0],"
            " [tf.config.LogicalDeviceConfiguration()] * 2)\n"
            "print(len(tf.config.list_logical_devices('CPU')), tf.config.threading.get_intra_op_parallelism_threads())\n")
    assert in_fresh_process(code).split()[-2:] == ["2", "1"]


@pytest.mark.parametrize("onednn", [None, "0"])
def test_strided_depthwise_layers_run_with_either_kernel_set(onednn):
    """oneDNN is on unless the user turns it off; either way a (2, 1)-strided layer runs, natively (oneDNN)
    or decomposed (TensorFlow's own kernels), to the same numbers as by its definition."""
    code = ("import numpy as np, keras\n"
            "from esc50_baseline import runtime\n"
            "layer = keras.layers.DepthwiseConv2D(3, strides=(2, 1), padding='same', use_bias=False)\n"
            "x = np.ones((1, 6, 4, 1), np.float32)\n"
            "layer.build(x.shape)\n"
            "layer.set_weights([np.ones((3, 3, 1, 1), np.float32)])\n"
            "print(runtime.native_unequal_strides(), runtime._DECOMPOSE['on'], layer(x).numpy()[0, :, :, 0].tolist())\n")
    native, decomposing, *values = in_fresh_process(code, {"TF_ENABLE_ONEDNN_OPTS": onednn}).split(" ", 2)
    assert decomposing == str(native == "False")
    if onednn == "0":
        assert native == "False"
    # 'same' at stride 2 over 6 rows pads one row after: outputs centred on rows 1, 3, 5 (0-based)
    by_hand = same_padded_depthwise(np.ones((1, 6, 4, 1)), np.ones((3, 3, 1)), (2, 1))[0][0, :, :, 0]
    np.testing.assert_allclose(np.array(json.loads(values[0])), by_hand)


def in_fresh_process(code, environment=None):
    """What `code` prints, run by a new Python in the repository (TensorFlow's settings are per process)."""
    env = dict(os.environ)
    for key, value in (environment or {}).items():
        env.pop(key, None)
        if value is not None:
            env[key] = value
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]
