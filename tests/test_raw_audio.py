"""Raw-audio TFLite models: the log-mel front end and the fold's normalisation inside the graph give the
project's features, and the converted model the Keras model's probabilities on those features."""
import numpy as np
import pytest

from conftest import class_signal, shipped_defaults
from esc50_baseline.features.extraction import FeatureSettings, LogMel
from esc50_baseline.features.normalization import Normalizer
from esc50_baseline.models import model_files
from esc50_baseline import runtime
from esc50_baseline.tflite.raw_audio import convert_raw, frames, front_end
from esc50_baseline.tflite.run import TFLiteModel


@pytest.fixture(scope="module")
def clips():
    """Five 5 s clips: tones of several classes, one partly silent, one quiet; the extractor and a
    normalisation fitted on them."""
    settings = FeatureSettings.from_params(shipped_defaults()["feature_extractor"])
    rng = np.random.default_rng(0)
    y = np.stack([class_signal(k, settings.n_samples, settings.fs, rng) for k in (0, 2, 4, 6, 8)]).astype(np.float32)
    y[1, :100000] = 0.0
    y[2] *= 1e-3
    extractor = LogMel(settings)
    features = np.stack([extractor(c) for c in y])
    return y, extractor, Normalizer.fit(features), features


@pytest.mark.parametrize("n, length, hop", [(222548, 2048, 882), (100, 10, 5), (101, 7, 3), (50, 4, 9), (64, 64, 8)])
def test_frames_from_slices_are_tf_signal_frame(n, length, hop):
    from esc50_baseline.runtime import tf
    y = np.random.default_rng(n).standard_normal((2, n)).astype(np.float32)
    np.testing.assert_array_equal(frames(tf.constant(y), length, hop), tf.signal.frame(y, length, hop))


def test_the_graph_front_end_gives_the_project_features(clips):
    y, extractor, normalizer, features = clips
    graph = np.asarray(front_end(extractor, normalizer)(y))
    assert graph.shape == (5, 40, 251, 1)
    expected = normalizer(features)
    np.testing.assert_allclose(graph[..., 0], expected, atol=2e-3)  # float32 throughout, against a float64 log
    assert np.abs(graph[..., 0] - expected).mean() < 1e-4


@pytest.fixture(scope="module")
def network():
    import keras
    runtime.setup(0)
    inputs = keras.Input((40, 251, 1))
    hidden = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 5, strides=4, activation="relu")(inputs))
    return keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(hidden))


def test_raw_audio_models_give_the_keras_probabilities_of_the_rolled_features(clips, network, tmp_path):
    y, extractor, normalizer, features = clips
    for fmt, tolerance in (("raw_float32", 1e-4), ("raw_float16", 2e-2)):
        path = str(tmp_path / f"{fmt}.tflite")
        open(path, "wb").write(convert_raw(network, fmt, extractor, normalizer))
        tflite = TFLiteModel(path)
        assert list(tflite.input["shape"]) == [1, 220500] and tflite.outputs_probabilities
        # the test-time shift rolls the features, as the pipeline does, not the samples (their frames at the
        # wrap differ); 0 is the plain prediction, 120 and -251 + 7 wrap most of the clip around
        for shift in (0, 25, 120, -244):
            expected = model_files.predict(network, np.roll(normalizer(features), shift, axis=2))
            probabilities, _seconds = tflite.predict(y, shift)
            np.testing.assert_allclose(probabilities, expected, atol=tolerance, err_msg=f"{fmt}, shift {shift}")
    with pytest.raises(ValueError, match="raw_float32, raw_float16, raw_int8"):
        convert_raw(network, "raw_int4", extractor, normalizer)


def test_raw_int8_is_the_int8_network_behind_the_float_front_end(clips, network, tmp_path):
    from tensorflow.lite.tools import flatbuffer_utils
    from esc50_baseline.tflite.convert import convert
    from esc50_baseline.tflite.size import op_name
    y, extractor, normalizer, features = clips
    raw_path, int8_path = str(tmp_path / "raw_int8.tflite"), str(tmp_path / "int8.tflite")
    open(raw_path, "wb").write(convert_raw(network, "raw_int8", extractor, normalizer, representative=y))
    open(int8_path, "wb").write(convert(network, "int8", normalizer(features)))  # calibrated on the same clips
    model = flatbuffer_utils.read_model(raw_path)
    graph = model.subgraphs[0]
    kinds = {op_name(model, op): graph.tensors[op.outputs[0]].type for op in graph.operators}
    FLOAT32, INT8 = 0, 9  # the schema's TensorType values
    assert kinds["RFFT2D"] == 8 and kinds["LOG"] == FLOAT32 and kinds["SOFTMAX"] == FLOAT32  # 8: complex64
    assert kinds["CONV_2D"] == INT8 and kinds["QUANTIZE"] == INT8 and kinds["DEQUANTIZE"] == FLOAT32
    raw, int8 = TFLiteModel(raw_path), TFLiteModel(int8_path)
    assert raw.input["dtype"] == np.float32 and int8.input["dtype"] == np.int8
    for shift in (0, 60):
        from_samples, _ = raw.predict(y, shift)
        from_features, _ = int8.predict(np.roll(normalizer(features), shift, axis=2))
        np.testing.assert_array_equal(from_samples.argmax(axis=1), from_features.argmax(axis=1))
        np.testing.assert_allclose(from_samples, from_features, atol=0.02)  # a step or two of the int8 logits
    with pytest.raises(ValueError, match="representative samples"):
        convert_raw(network, "raw_int8", extractor, normalizer)


def test_the_raw_audio_model_is_float32_under_a_mixed_policy_a_training_left_behind(clips, network):
    """A training in the same process (task_esc50_tflite.py trains, then converts) sets a mixed global policy."""
    import keras
    from esc50_baseline.tflite.raw_audio import raw_audio_model
    y, extractor, normalizer, features = clips
    expected = raw_audio_model(network, extractor, normalizer).predict([y[:1], np.zeros(1, np.int32)], verbose=0)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = raw_audio_model(network, extractor, normalizer)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert [t.dtype for t in model.inputs] == ["float32", "int32"] and model.outputs[0].dtype == "float32"
    assert model.get_layer("log_mel").compute_dtype == model.get_layer("time_roll").compute_dtype == "float32"
    np.testing.assert_array_equal(model.predict([y[:1], np.zeros(1, np.int32)], verbose=0), expected)
