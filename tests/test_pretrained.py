"""The pretrained family on random weights: each backbone builds and trains, the input adapter gives each
backbone ImageNet's statistics, the fine-tuning schedule freezes exactly what it says and resumes across its
phases, weights come from a file, missing weights are one sentence, and the int8 model runs under LiteRT."""
import os
import subprocess
import sys
import urllib.request

import numpy as np
import pytest

from conftest import ROOT, make_dataset, shipped_defaults
from esc50_baseline.errors import UserError
from esc50_baseline import runtime  # noqa: F401  (quiet TensorFlow start-up)
from esc50_baseline.models import model_files
from esc50_baseline.training import trainer
from esc50_baseline.models import pretrained
from esc50_baseline.models.builder import build_model
from esc50_baseline.models.complexity import format_size_report, keras_size_report
from esc50_baseline.training.fine_tuning import phases
from test_training import separable

SMALL = {"type": "pretrained", "backbone": "MobileNetV3Small", "weights": "none", "input_size": [32, 64],
         "channels": "repeat", "dropout": 0.0, "options": {"minimalistic": True}}


def learner_for(spec, **settings):
    learner = dict(shipped_defaults()["learner"], model="p", families={"p": spec}, verbose=0, batch_size=8)
    learner["fine_tuning"] = dict(learner["fine_tuning"], **settings.pop("fine_tuning", {}))
    return dict(learner, **settings)


def build(spec, n_classes=4, seed=0):
    runtime.setup(seed)
    return build_model(learner_for(spec), (40, 50), n_classes)


def one_eager_step(model, x, y):
    """One Adam step, eagerly: compiling a graph of a hundred layers would take longer than the step."""
    import keras
    import tensorflow as tf
    optimizer = keras.optimizers.Adam(1e-3)
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(keras.losses.categorical_crossentropy(np.eye(4)[y], model(x[..., None], training=True)))
    optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
    return float(loss)


def trainable_layers(model):
    """Names of the layers (backbone layers as backbone/NAME) whose weights the optimizer would train."""
    net = pretrained.find_backbone(model)
    inner = [f"backbone/{layer.name}" for layer in net.layers if layer.trainable_weights]
    return set(inner + [layer.name for layer in model.layers if layer is not net and layer.trainable_weights])


@pytest.mark.parametrize("backbone, channels", [("VGG19", "repeat"), ("MobileNetV3Small", "deltas"),
                                                ("EfficientNetB0", "repeat")])
def test_each_backbone_builds_and_trains_a_step(backbone, channels):
    model = build(dict(SMALL, backbone=backbone, channels=channels, options={}))
    assert pretrained.find_backbone(model).input_shape == (None, 32, 64, 3)
    x, y = separable(2, 4, np.random.default_rng(0))
    before = [np.array(v) for v in model.trainable_variables]
    loss = one_eager_step(model, x, y)
    assert np.isfinite(loss)
    changed = [not np.array_equal(a, np.asarray(b)) for a, b in zip(before, model.trainable_variables)]
    assert changed[0] and changed[-1]  # the backbone's first layer and the head both learned
    assert all(hasattr(__import__("keras").applications, name) for name in pretrained.BACKBONES)


def test_the_adapter_gives_the_backbone_imagenet_statistics_and_deltas():
    import keras
    for backbone in ("VGG19", "MobileNetV3Small", "DenseNet121"):
        model = build(dict(SMALL, backbone=backbone, options={}))
        adapter = keras.Model(model.input, model.get_layer("to_image_scale").output)
        mean, std = pretrained.INPUT_SPACES[pretrained.BACKBONES[backbone]]
        out = np.asarray(adapter(np.stack([np.zeros((40, 50, 1)), np.ones((40, 50, 1))]).astype(np.float32)))
        np.testing.assert_allclose(out[0], np.broadcast_to(mean, out[0].shape), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(out[1], np.broadcast_to(mean + std, out[1].shape), rtol=1e-5, atol=1e-5)
    assert pretrained.BACKBONES["VGG19"] == "caffe" and pretrained.BACKBONES["MobileNetV3Small"] == "pixels"
    model = build(dict(SMALL, channels="deltas", input_size=None))
    channels = keras.Model(model.input, model.get_layer("to_image_channels").output)
    ramp = np.tile(np.arange(50, dtype=np.float32), (40, 1))[None, ..., None]  # rises by 1 a frame
    out = np.asarray(channels(ramp))[0, :, 10:40]  # away from the zero padding at both ends
    np.testing.assert_allclose(out[..., 0], ramp[0, :, 10:40, 0], atol=1e-5)          # the log-mel itself
    np.testing.assert_allclose(out[..., 1], 1 / np.sqrt(0.1), rtol=1e-5)             # slope 1, unit-norm kernel
    np.testing.assert_allclose(out[..., 2], 0, atol=1e-4)                            # no curvature


def test_freezing_and_unfreezing_flip_exactly_the_named_layers():
    model = build(SMALL)
    net = pretrained.find_backbone(model)
    first = next(i for i, layer in enumerate(net.layers) if layer.name.startswith("expanded_conv_9_"))
    last_two = {f"backbone/{layer.name}" for layer in net.layers[first:] if layer.weights}
    is_bn = {f"backbone/{layer.name}" for layer in net.layers if type(layer).__name__ == "BatchNormalization"}
    every = {f"backbone/{layer.name}" for layer in net.layers if layer.weights}
    pretrained_weights = dict(SMALL, weights="imagenet")  # the schedule of a pretrained backbone (built with none)
    learner = learner_for(pretrained_weights, epochs=4, fine_tuning={"frozen_epochs": 2, "unfreeze": 2})
    frozen, tuned = phases(learner, model)
    assert (frozen.start, frozen.end, tuned.start, tuned.end) == (0, 2, 2, 4)
    assert "frozen" in frozen.apply(model) and trainable_layers(model) == {"classes"}
    assert "last 2 of 11 blocks" in tuned.apply(model)
    assert trainable_layers(model) == {"classes"} | (last_two - is_bn)
    _frozen, everything = phases(dict(learner, fine_tuning=dict(learner["fine_tuning"], unfreeze="all",
                                                                batch_norm_frozen=False)), model)
    everything.apply(model)
    assert trainable_layers(model) == {"classes"} | every
    frozen.apply(model)  # and back: the head alone
    assert trainable_layers(model) == {"classes"}


def test_a_frozen_backbone_keeps_its_weights_and_batch_norm_statistics():
    model = build(SMALL)
    learner = learner_for(SMALL, epochs=2, fine_tuning={"frozen_epochs": 1})
    phases(learner, model)[0].apply(model)
    net = pretrained.find_backbone(model)
    before = [np.array(w) for w in net.weights]  # moving means and variances included
    head = np.array(model.get_layer("classes").kernel)
    one_eager_step(model, *separable(4, 4, np.random.default_rng(0)))
    assert not np.array_equal(head, np.asarray(model.get_layer("classes").kernel))
    for a, b in zip(before, net.weights):
        np.testing.assert_array_equal(a, np.asarray(b))


def test_training_resumed_in_either_phase_ends_with_the_uninterrupted_weights(tmp_path):
    import keras

    class Killed(Exception):
        pass

    class KillAfter(keras.callbacks.Callback):
        def __init__(self, epoch):
            super().__init__()
            self.epoch = epoch

        def on_epoch_end(self, epoch, logs=None):  # after the checkpoint of that epoch is written
            if epoch + 1 == self.epoch:
                raise Killed()

    x, y = separable(4, 4, np.random.default_rng(0))
    learner = learner_for(SMALL, epochs=3, fine_tuning={"frozen_epochs": 1, "unfreeze": 3, "learning_rate": 3e-4})

    def train(name, kills=()):
        checkpoint = str(tmp_path / f"{name}.npz")
        for epoch in list(kills) + [None]:
            model = build(SMALL)
            try:
                trainer.train_fold(model, x, y, x[:0], y[:0], 4, learner, 0, str(tmp_path / name),
                                   checkpoint_path=checkpoint, extra_callbacks=[KillAfter(epoch)] if epoch else [])
            except Killed:
                continue
        return model.get_weights()

    whole = train("whole")
    for name, kills in (("at_the_phase_change", [1]), ("inside_the_second_phase", [2])):
        for a, b in zip(whole, train(name, kills)):
            np.testing.assert_array_equal(a, b, err_msg=name)
    assert not all(np.array_equal(a, b) for a, b in zip(whole, build(SMALL).get_weights()))


def test_a_weights_file_gives_the_same_backbone(tmp_path):
    import keras
    saved = pretrained.find_backbone(build(SMALL, seed=0))
    path = str(tmp_path / "small.weights.h5")
    saved.save_weights(path)
    loaded = pretrained.find_backbone(build(dict(SMALL, weights=path), seed=1))
    fresh = pretrained.find_backbone(build(SMALL, seed=1))
    image = keras.random.normal((2, 32, 64, 3), seed=3) * 50 + 120
    np.testing.assert_array_equal(np.asarray(saved(image)), np.asarray(loaded(image)))
    assert not np.allclose(np.asarray(saved(image)), np.asarray(fresh(image)))


def test_missing_weights_are_one_sentence(tmp_path, monkeypatch):
    with pytest.raises(UserError, match=r"^learner.families.p.weights is /no/such.weights.h5, which does not exist; "):
        build(dict(SMALL, weights="/no/such.weights.h5"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    for proxy in ("https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")  # a closed port: the download fails at once
    monkeypatch.setattr(urllib.request, "_opener", None)  # so that urlopen reads the proxy setting again
    with pytest.raises(UserError) as raised:
        build(dict(SMALL, weights="imagenet", options={}))
    message = str(raised.value)
    assert message.startswith("learner.families.p.weights is imagenet, but the ImageNet weights of MobileNetV3Small "
                              "could not be downloaded; place weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5 "
                              "(from https://storage.googleapis.com/")
    assert f"in {tmp_path / 'keras' / 'models'}, or set learner.families.p.weights to that file's path." in message


def test_the_command_line_names_a_missing_weights_file(tmp_path):
    dataset = str(tmp_path / "esc50")
    make_dataset(dataset, n_classes=2, n_folds=2, per_fold=1)
    result = subprocess.run([sys.executable, os.path.join(ROOT, "task_esc50.py"), "--dataset_path", dataset,
                             "--set", "mobilenet_v3_scratch", "--param",
                             "learner.families.mobilenet_v3_scratch.weights=/no/such.weights.h5",
                             "--param", f"path.application={tmp_path / 'system'}"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: learner.families.mobilenet_v3_scratch.weights is /no/such.weights.h5, which "
                               "does not exist;")
    assert not (tmp_path / "system" / "features").exists()  # said before any work


def test_fine_tuning_settings_that_cannot_apply_are_one_sentence():
    from esc50_baseline.training.fine_tuning import check
    plain = dict(shipped_defaults()["learner"], model="cnn3")
    with pytest.raises(UserError, match="learner.model cnn3 has no pretrained backbone to freeze"):
        check(dict(plain, fine_tuning=dict(plain["fine_tuning"], frozen_epochs=3)))
    with pytest.raises(UserError, match="learner.fine_tuning.unfreeze is 'half'"):
        check(learner_for(SMALL, fine_tuning={"unfreeze": "half"}))
    with pytest.raises(UserError, match=r"frozen_epochs is 9, more than learner.epochs \(5\)"):
        check(learner_for(SMALL, epochs=5, fine_tuning={"frozen_epochs": 9}))
    with pytest.raises(UserError, match="backbone is 'ResNet9000'; use one of: VGG16, VGG19"):
        build(dict(SMALL, backbone="ResNet9000"))


def test_the_size_report_sums_the_backbone_by_block_and_says_how_far_over_the_limits():
    model = build(SMALL)
    net = pretrained.find_backbone(model)
    report = keras_size_report(model)
    rows = [r for r in report["layers"] if r["name"].startswith("backbone/")]
    assert len(rows) == 12 and rows[0]["name"] == "backbone/stem" and rows[-1]["name"] == "backbone/expanded_conv_10"
    assert sum(r["params"] for r in rows) == net.count_params()
    assert report["total"]["params"] == model.count_params()
    text = format_size_report(report)
    times = report["total"]["bytes"] / (128 * 1024)
    assert f"(too large: {times:.1f} times the limit)" in text


def test_full_integer_conversion_runs_under_litert(tmp_path):
    from esc50_baseline.tflite.convert import convert
    from esc50_baseline.tflite.run import TFLiteModel
    model = build(SMALL)
    x, y = separable(8, 4, np.random.default_rng(0))
    for _ in range(5):  # away from the uniform output
        one_eager_step(model, x, y)
    path = tmp_path / "int8.tflite"
    path.write_bytes(convert(model, "int8", representative=x))
    tflite = TFLiteModel(str(path))
    assert tflite.input["dtype"] == np.int8
    probabilities, _seconds = tflite.predict(x)
    keras_p = model_files.predict(model, x)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert np.abs(probabilities - keras_p).max() < 0.1


def test_random_initial_weights_keep_batch_normalization_training():
    """With weights: none there are no statistics to keep: frozen, the batch normalization of a network trained
    from scratch would never normalize, and it would not learn."""
    model = build(SMALL)
    (tuned,) = phases(learner_for(SMALL, epochs=2), model)
    assert tuned.apply(model).startswith("epochs 1-2: the whole backbone trainable, learning rate")
    net = pretrained.find_backbone(model)
    assert all(layer.trainable for layer in net.layers if type(layer).__name__ == "BatchNormalization")
    (kept,) = phases(learner_for(dict(SMALL, weights="imagenet"), epochs=2), model)
    assert kept.batch_norm_frozen
