"""Running a .tflite model with LiteRT (tflite/run.py): quantization at the int8 boundary, logits or
probabilities out, damaged files. On a tiny network converted here in a few seconds, so that mutation
testing can afford these tests for every mutant."""
import time
import warnings

import numpy as np
import pytest

from esc50_baseline.errors import UserError
from esc50_baseline import runtime
from esc50_baseline.runtime import tf
from esc50_baseline.tflite.convert import convert
from esc50_baseline.tflite.run import TFLiteModel, dequantize, ends_in_softmax, model_problem, quantize, softmax


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A dense layer over 6 x 8 features, 3 classes, softmax, and its .tflite files: as this project exports
    it (ending in logits) and as another converter may (ending in the softmax), each in float32 and in full
    integer (int8 in and out). Features off-centre, so that the input's zero point matters."""
    import keras
    runtime.setup(0)
    x = (np.random.default_rng(0).normal(size=(40, 6, 8)) * 2 + 1).astype(np.float32)
    inputs = keras.Input((6, 8, 1))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs)))
    kernel, bias = model.layers[-1].get_weights()  # random weights, and classes of unequal prior
    model.layers[-1].set_weights([kernel, bias + [0.5, 0.0, -0.5]])
    folder = tmp_path_factory.mktemp("tiny_tflite")
    files = {}
    for fmt in ("float32", "int8"):
        files[f"logits_{fmt}"] = convert(model, fmt, representative=x)
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if fmt == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([c[np.newaxis, ..., np.newaxis]] for c in x)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = converter.inference_output_type = tf.int8
        with warnings.catch_warnings():  # the converter's notice that it calibrated the input itself
            warnings.simplefilter("ignore")
            files[f"softmax_{fmt}"] = converter.convert()
    paths = {}
    for name, data in files.items():
        paths[name] = str(folder / f"{name}.tflite")
        with open(paths[name], "wb") as f:
            f.write(data)
    return paths, x, np.asarray(model(x[..., np.newaxis]))


def test_quantize_rounds_to_nearest_and_saturates_in_the_integer_type():
    np.testing.assert_array_equal(quantize([0.26, 0.24, -0.26], 0.1, 0), [3, 2, -3])
    q = quantize([-1.0, 0.0, 0.5, 100.0], 0.01, 128, np.uint8)
    assert q.dtype == np.uint8
    np.testing.assert_array_equal(q, [28, 128, 178, 255])
    np.testing.assert_array_equal(quantize([-100.0], 0.01, 128, np.uint8), [0])
    assert quantize([100000.4], 1.0, 0, np.int32).tolist() == [100000]
    assert quantize(np.float32([0.35]), 0.1, 0).tolist() == [3]  # in double precision: 3.4999999, not 3.5
    np.testing.assert_allclose(dequantize([5, -3], 0.5, 3), [1.0, -3.0])


def test_softmax_of_large_logits_and_of_one_clip():
    np.testing.assert_allclose(softmax([[1000.0, 1000.0 + np.log(3.0)], [-5.0, -5.0]]), [[0.25, 0.75], [0.5, 0.5]])
    np.testing.assert_allclose(softmax([0.0, np.log(3.0)]), [0.25, 0.75])


def test_the_last_operator_tells_logits_from_probabilities(tiny):
    paths, _x, _expected = tiny
    assert [ends_in_softmax(paths[n]) for n in ("logits_float32", "logits_int8")] == [False, False]
    assert [ends_in_softmax(paths[n]) for n in ("softmax_float32", "softmax_int8")] == [True, True]


def test_damaged_files_are_described_and_named(tiny, tmp_path):
    paths, _x, _expected = tiny
    assert model_problem(paths["logits_int8"]) is None
    data = open(paths["logits_int8"], "rb").read()
    for name, content in (("half", data[:len(data) // 2]), ("empty", b""), ("text", b"not a model at all")):
        path = str(tmp_path / f"{name}.tflite")
        open(path, "wb").write(content)
        problem = model_problem(path)
        assert isinstance(problem, str) and problem not in ("", "ValueError", "RuntimeError"), name  # LiteRT's words
        with pytest.raises(UserError) as error:
            TFLiteModel(path)
        assert str(error.value) == (f"The TFLite model {path} is damaged ({problem}); delete it and run "
                                    "task_esc50_tflite.py again to convert it anew.")


def test_a_model_without_the_time_shift_input_is_no_raw_audio_model(tiny):
    """A raw-audio model converted by an earlier version took samples only; it is converted again, and a shift
    asked of it is one sentence."""
    paths, x, _expected = tiny
    path = paths["logits_float32"]
    assert model_problem(path, raw_audio=True) == "a raw-audio model without the time-shift input"
    model = TFLiteModel(path)
    assert model.shift_input is None and model.predict(x[:1], 0)[0].shape == (1, 3)  # unshifted: as ever
    with pytest.raises(UserError, match=f"The TFLite model {path} takes no time shift"):
        model.predict(x[:1], 2)


@pytest.mark.parametrize("name, tolerance", [("logits_float32", 1e-5), ("logits_int8", 0.03),
                                             ("softmax_float32", 1e-5), ("softmax_int8", 0.03)])
def test_each_model_gives_the_keras_probabilities(tiny, name, tolerance):
    paths, x, expected = tiny
    model = TFLiteModel(paths[name])
    assert model.outputs_probabilities == name.startswith("softmax")
    assert (model.input["dtype"] == np.int8) == name.endswith("int8")
    probabilities, _seconds = model.predict(x)
    assert expected.max(axis=1).mean() > 0.75  # a confident network: a wrong input scale would show
    np.testing.assert_allclose(probabilities, expected, atol=tolerance)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)  # int8 ones (steps of 1/256) too
    assert np.mean(probabilities.argmax(axis=1) == expected.argmax(axis=1)) >= 0.95


class FixedOutput:
    """An interpreter stand-in whose model always says `values`."""

    def __init__(self, values):
        self.values = np.asarray([values], np.float32)

    def set_tensor(self, index, value):
        pass

    def invoke(self):
        pass

    def get_tensor(self, index):
        return self.values


def test_probabilities_out_of_range_are_clipped_and_renormalised(tiny):
    paths, x, _expected = tiny
    model = TFLiteModel(paths["softmax_float32"])
    model.interpreter = FixedOutput([0.2, -0.1, 0.3])
    np.testing.assert_allclose(model.predict_one(x[0]), [0.4, 0.0, 0.6], atol=1e-7)
    model.interpreter = FixedOutput([-0.2, 0.0, 0.0])  # nothing left: every class alike
    np.testing.assert_allclose(model.predict_one(x[0]), [1 / 3] * 3)


def test_predict_reports_seconds_per_clip(tiny):
    paths, x, _expected = tiny
    model = TFLiteModel(paths["logits_int8"])
    started = time.perf_counter()
    probabilities, seconds = model.predict(x)
    elapsed = time.perf_counter() - started
    assert probabilities.shape == (40, 3) and 0 < seconds * 40 <= elapsed
    empty, seconds = model.predict(x[:0])
    assert empty.shape == (0, 0) and 0 <= seconds < elapsed
