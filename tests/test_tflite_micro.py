"""The microcontroller package: TensorFlow Lite Micro's own interpreter against LiteRT, the arena it needs,
an op it lacks, the C array, and a header whose constants reproduce the project's features in plain numpy."""
import re

import numpy as np
import pytest

from conftest import class_signal, shipped_defaults
from esc50_baseline.errors import UserError
from esc50_baseline.features.extraction import FeatureSettings, LogMel
from esc50_baseline.features.normalization import Normalizer
from esc50_baseline.runtime import tf
from esc50_baseline.tflite.micro import (MicroModel, c_array, compare_with_litert, header_features, parse_header,
                                         settings_header, write_package)
from esc50_baseline.tflite.run import TFLiteModel, quantize
from test_tflite_run import tiny  # noqa: F401  (the fixture)


def test_tflm_runs_the_int8_model_as_litert_does_in_the_arena_it_reports(tiny):  # noqa: F811
    paths, x, _expected = tiny
    micro = MicroModel(paths["logits_int8"])
    check = compare_with_litert(micro, TFLiteModel(paths["logits_int8"], reference_kernels=True), x)
    assert check["clips"] == 40 and check["agreement"] == 1.0
    assert check["max_step_difference"] <= 1  # against LiteRT's reference kernels: a rounding step at most
    assert 6 * 8 + 3 < micro.arena_bytes < 64 * 1024  # at least its input and output tensors
    # what it allocates, not the room it was given: the float model's tensors take 4 bytes a value, not 1
    assert MicroModel(paths["logits_float32"]).arena_bytes > micro.arena_bytes + 3 * (6 * 8 + 3)


def test_an_op_that_tflm_lacks_is_named(tmp_path):
    @tf.function(input_signature=[tf.TensorSpec([1, 64], tf.float32)])
    def spectrum(y):
        return tf.abs(tf.signal.rfft(y))
    path = str(tmp_path / "rfft.tflite")
    converter = tf.lite.TFLiteConverter.from_concrete_functions([spectrum.get_concrete_function()], spectrum)
    open(path, "wb").write(converter.convert())
    with pytest.raises(UserError) as error:
        MicroModel(path)
    assert str(error.value).startswith(f"TensorFlow Lite Micro has no kernel for the RFFT2D op of {path}")


def test_the_c_array_holds_the_model_bytes(tiny, tmp_path):  # noqa: F811
    paths, _x, _expected = tiny
    folder = write_package(str(tmp_path / "package"), paths["logits_int8"], "// settings\n")
    source = open(f"{folder}/model_data.cc").read()
    data = bytes(int(b, 16) for b in re.findall(r"0x([0-9a-f]{2})", source))
    assert data == open(paths["logits_int8"], "rb").read()
    assert f"g_model_len = {len(data)};" in source and '#include "model_data.h"' in source
    assert "extern const unsigned char g_model[];" in open(f"{folder}/model_data.h").read()
    assert open(f"{folder}/model_settings.h").read() == "// settings\n"
    assert c_array("a", bytes(range(20)), per_line=16).count("\n    ") == 2  # two rows of hex


def test_the_header_constants_reproduce_the_features_in_plain_numpy():
    settings = FeatureSettings.from_params(shipped_defaults()["feature_extractor"])
    extractor = LogMel(settings)
    rng = np.random.default_rng(0)
    clips = [class_signal(k, int(settings.fs * seconds), settings.fs, rng)
             for k, seconds in ((0, 5.0), (3, 2.0), (7, 6.0))]  # as long as a clip, shorter, longer
    clips[0][:20000] = 0.0  # silence: log of the offset alone
    fitted = Normalizer.fit(np.stack([extractor(c[:settings.n_samples]) for c in clips[:1]]))
    names = ["dog", 'say "hi"', "rain"]
    text = settings_header(extractor, fitted, (0.0421, -7), names, arena_bytes=190_001)
    values = parse_header(text)
    assert values["kTensorArenaSize"] == 190_464 and values["kClassNames"] == names
    assert values["kNumMels"] == 40 and values["kNumFrames"] == 251 and values["kLogOffset"] == settings.log_offset
    assert len(values["kMelWeights"]) < 0.1 * 40 * 1025  # the filter bank as sparse rows
    for clip in clips:
        padded = np.zeros(settings.n_samples, np.float32)
        padded[:min(len(clip), len(padded))] = clip[:settings.n_samples]
        expected = quantize(fitted(extractor(padded)[np.newaxis])[0], 0.0421, -7)
        device = header_features(values, clip)
        assert device.shape == (40, 251)
        difference = np.abs(device.astype(int) - expected)
        assert difference.max() <= 1 and np.mean(difference == 0) > 0.999  # float32 against float64 rounding
