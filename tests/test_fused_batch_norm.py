"""Batch normalization in TensorFlow's fused kernel: the arithmetic of Keras's own layer, and plain Keras saved."""
import keras
import numpy as np
import tensorflow as tf

from conftest import shipped_defaults
from esc50_baseline.models.builder import build_model
from esc50_baseline.training import fused_batch_norm


def pair(**options):
    """Keras's layer and the fused one, built alike and given the same (non-trivial) weights."""
    rng = np.random.default_rng(0)
    plain, fused = keras.layers.BatchNormalization(**options), fused_batch_norm.layer_class()(**options)
    for layer in (plain, fused):
        layer.build((4, 5, 6, 3))
    weights = [rng.uniform(0.5, 2.0, w.shape).astype(np.float32) for w in plain.get_weights()]
    plain.set_weights(weights)
    fused.set_weights(weights)
    return plain, fused


def step(layer, x):
    """One training call: its output, the gradients of a weighted sum of it, and the moving statistics after."""
    x = tf.constant(x)
    weight = tf.constant(np.random.default_rng(1).standard_normal(x.shape).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(y * weight)
    grads = tape.gradient(loss, [x] + layer.trainable_weights)
    return [y.numpy()] + [g.numpy() for g in grads] + [w.numpy() for w in layer.non_trainable_weights]


def test_a_training_step_computes_what_keras_batch_normalization_computes():
    x = np.random.default_rng(2).normal(3.0, 2.0, (4, 5, 6, 3)).astype(np.float32)
    for options in ({}, {"center": False, "scale": False}, {"momentum": 0.9, "epsilon": 1e-5}):
        plain, fused = pair(**options)
        expected, got = step(plain, x), step(fused, x)
        assert len(expected) == len(got)
        for e, g in zip(expected, got):
            np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4)
        assert not np.allclose(expected[-1], 1.0)  # the moving variance did move


def test_inference_and_frozen_layers_use_the_moving_statistics():
    plain, fused = pair()
    x = np.random.default_rng(3).standard_normal((4, 5, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(fused(x, training=False), plain(x, training=False), rtol=1e-6, atol=1e-6)
    fused.trainable = plain.trainable = False
    np.testing.assert_allclose(fused(x, training=True), plain(x, training=False), rtol=1e-6, atol=1e-6)


def test_a_model_swaps_to_the_fused_layer_for_training_and_back_to_plain_keras_with_its_weights():
    model = build_model(dict(shipped_defaults()["learner"], model="mobile_lc"), (40, 51), 5)
    training = fused_batch_norm.for_training(model)
    kinds = {type(layer).__name__ for layer in training.layers}
    assert "FusedBatchNormalization" in kinds and "BatchNormalization" not in kinds
    x = np.random.default_rng(4).standard_normal((2, 40, 51, 1)).astype(np.float32)
    np.testing.assert_allclose(training(x, training=False), model(x, training=False), rtol=1e-6, atol=1e-6)
    training.compile(optimizer="adam", loss="categorical_crossentropy")
    training.train_on_batch(np.repeat(x, 4, axis=0), np.eye(5, dtype=np.float32)[[0, 1, 2, 3, 4, 0, 1, 2]])
    saved = fused_batch_norm.plain(training)
    assert saved.get_config() == model.get_config()  # plain Keras: loads anywhere, converts as before
    assert "Fused" not in saved.to_json()
    for a, b in zip(saved.get_weights(), training.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(saved.get_weights(), model.get_weights()))  # it trained
