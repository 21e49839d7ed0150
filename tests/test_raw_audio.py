"""Raw-audio TFLite models: the log-mel front end and the fold's normalisation inside the graph give the
project's features, and the converted model the Keras model's probabilities on those features."""
import numpy as np
import pytest

from conftest import class_signal, shipped_defaults
from esc50_baseline.features.extraction import FeatureSettings, LogMel
from esc50_baseline.features.normalization import Normalizer
from esc50_baseline.training import runtime, trainer
from esc50_baseline.tflite.raw_audio import convert_raw, front_end
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


def test_the_graph_front_end_gives_the_project_features(clips):
    y, extractor, normalizer, features = clips
    graph = np.asarray(front_end(extractor, normalizer)(y))
    assert graph.shape == (5, 40, 251, 1)
    expected = normalizer(features)
    np.testing.assert_allclose(graph[..., 0], expected, atol=2e-3)  # float32 throughout, against a float64 log
    assert np.abs(graph[..., 0] - expected).mean() < 1e-4


def test_raw_audio_models_give_the_keras_probabilities(clips, tmp_path):
    import keras
    y, extractor, normalizer, features = clips
    runtime.setup(0)
    inputs = keras.Input((40, 251, 1))
    hidden = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 5, strides=4, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(hidden))
    expected = trainer.predict(model, normalizer(features))
    for fmt, tolerance in (("raw_float32", 1e-4), ("raw_float16", 2e-2)):
        path = str(tmp_path / f"{fmt}.tflite")
        open(path, "wb").write(convert_raw(model, fmt, extractor, normalizer))
        tflite = TFLiteModel(path)
        assert list(tflite.input["shape"]) == [1, 220500] and tflite.outputs_probabilities
        probabilities, _seconds = tflite.predict(y)
        np.testing.assert_allclose(probabilities, expected, atol=tolerance)
    with pytest.raises(ValueError, match="raw_float32, raw_float16"):
        convert_raw(model, "raw_int4", extractor, normalizer)
