import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, make_dataset, shipped_defaults
from esc50_baseline.models import model_files
from esc50_baseline import runtime
from esc50_baseline.training import trainer
from esc50_baseline.models.builder import build_model
from esc50_baseline.tflite.convert import FORMATS, convert
from esc50_baseline.tflite.run import TFLiteModel, dequantize, quantize, softmax
from esc50_baseline.tflite.size import tflite_size_report
from esc50_baseline.models.complexity import keras_size_report
from test_training import separable, small_learner


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    defaults = shipped_defaults()
    runtime.setup(0)
    rng = np.random.default_rng(0)
    x, y = separable(20, 4, rng)
    xv, yv = separable(6, 4, rng)
    learner = small_learner(defaults)
    model = build_model(learner, x.shape[1:], 4)
    trainer.train_fold(model, x, y, xv, yv, 4, learner, 0, str(tmp_path_factory.mktemp("log")))
    folder = tmp_path_factory.mktemp("tflite")
    paths = {}
    for fmt in FORMATS:
        paths[fmt] = str(folder / f"{fmt}.tflite")
        with open(paths[fmt], "wb") as f:
            f.write(convert(model, fmt, representative=x))
    return model, paths, separable(10, 4, np.random.default_rng(9))


def test_quantize_dequantize_by_hand():
    np.testing.assert_array_equal(quantize([0.0, 0.1, -0.1, 10.0, -10.0], 0.05, -3), [-3, -1, -5, 127, -128])
    np.testing.assert_allclose(dequantize(np.array([-128, 0, 127], np.int8), 1 / 256, -128), [0.0, 0.5, 255 / 256])
    np.testing.assert_allclose(softmax([[0.0, np.log(3.0)]]), [[0.25, 0.75]])


def test_all_formats_convert_and_run(trained):
    model, paths, (xt, yt) = trained
    sizes = {fmt: os.path.getsize(p) for fmt, p in paths.items()}
    assert sizes["float16"] < sizes["float32"] and sizes["int8"] < sizes["float16"]
    int8 = TFLiteModel(paths["int8"])
    assert int8.input["dtype"] == np.int8 and int8.output["dtype"] == np.int8
    assert not int8.outputs_probabilities  # int8 logits out; softmax after dequantization
    keras_p = model_files.predict(model, xt)
    for fmt, path in paths.items():
        probabilities, seconds = TFLiteModel(path).predict(xt)
        assert probabilities.shape == (len(xt), 4) and seconds > 0
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
        assert (probabilities > 0).all()  # softmax of dequantized logits: no probability rounds to zero
        agreement = np.mean(probabilities.argmax(axis=1) == keras_p.argmax(axis=1))
        assert agreement >= (0.99 if fmt in ("float32", "float16") else 0.9), fmt
    np.testing.assert_allclose(TFLiteModel(paths["float32"]).predict(xt)[0], keras_p, atol=1e-5)


def test_keras_latency_is_timed_on_the_models_own_outputs(trained):
    """The comparison times Keras through a traced graph; that graph must compute what the model computes."""
    from esc50_baseline.tflite.latency import keras_predict_one, latency_ms
    model, _, (xt, _) = trained
    predict_one = keras_predict_one(model)
    for clip in xt[:3]:
        np.testing.assert_allclose(np.asarray(predict_one(clip)), model(clip[None, ..., None], training=False),
                                   atol=1e-6)
    assert latency_ms(predict_one, xt, 2) > 0


def test_full_integer_model_needs_representative_data(trained):
    with pytest.raises(ValueError, match="representative"):
        convert(trained[0], "int8", representative=None)


def test_tflite_size_follows_dcase_formula(trained):
    model, paths, _ = trained
    weights = {fmt: tflite_size_report(p)["total"] for fmt, p in paths.items()}
    keras_total = keras_size_report(model)["total"]
    assert weights["float32"]["macs"] == keras_total["macs"] == weights["int8"]["macs"]
    nz = weights["float32"]["nonzero"]
    assert weights["float32"]["bytes"] == 4 * nz
    assert weights["float16"]["bytes"] == 2 * weights["float16"]["nonzero"]
    # full integer: int8 weights (1 byte) and int32 biases (4 bytes), non-zero ones only
    from tensorflow.lite.tools import flatbuffer_utils
    m = flatbuffer_utils.read_model(paths["int8"])
    constants = [(t, m.buffers[t.buffer].data) for t in m.subgraphs[0].tensors]
    constants = [(t, np.asarray(d, np.uint8).tobytes()) for t, d in constants if d is not None and len(d)]
    int8_nz = sum(int(np.count_nonzero(np.frombuffer(d, np.int8))) for t, d in constants if t.type == 9)
    bias_nz = sum(int(np.count_nonzero(np.frombuffer(d, np.int32))) for t, d in constants
                  if t.type == 2 and len(t.shape) == 1 and t.shape[0] > 1)
    assert weights["int8"]["bytes"] == int8_nz + 4 * bias_nz
    assert weights["float32"]["params"] == keras_total["params"] - sum(
        w.size for l in model.layers if type(l).__name__ == "BatchNormalization" for w in l.get_weights())


def test_tflite_script_end_to_end(tmp_path):
    root = str(tmp_path / "d")
    make_dataset(root, n_classes=3, n_folds=2, per_fold=3, seconds=2.0)
    args = [sys.executable, os.path.join(ROOT, "task_esc50_tflite.py"), "--dataset_path", root, "--set", "quick",
            "--param", "learner.epochs=2", "--param", f"path.application={tmp_path / 's'}",
            "--param", "testing.time_shifts=[0, 30]",
            "--param", "tflite.formats=[float32, int8, raw_float32, raw_int8]", "--param", "tflite.latency_clips=2"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "TFLite comparison" in result.stdout
    csv_path = next((tmp_path / "s" / "evaluator").glob("quick_*/tflite_comparison.csv"))
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "fold,format,file_bytes,size_bytes,accuracy,logloss,agreement,latency_ms,twin_agreement"
    assert [line.split(",")[1] for line in lines[1:]] == ["keras", "float32", "int8", "raw_float32", "raw_int8"]
    keras_row, float_row = lines[1].split(","), lines[2].split(",")
    assert float(float_row[6]) == 1.0 and float(float_row[4]) == float(keras_row[4])
    # the int8 row is the int8 model's predictions of fold 2's clips, as written, recomputed here
    import pandas as pd
    int8 = pd.read_csv(next((tmp_path / "s" / "tflite").glob("*/res_fold_2_int8.csv")))
    assert len(int8) == 9 and (int8["filename"].str[:2] == "2-").all()
    int8_row = lines[3].split(",")
    assert float(int8_row[4]) == pytest.approx((int8["true_label"] == int8["predicted_label"]).mean(), abs=1e-4)
    assert "int8" in result.stdout.split("TFLite comparison")[0]  # its DCASE tables come before the comparison
    # the raw-audio models read the clips' samples, compute the features and roll them by the test-time shifts
    # themselves: their feature twins' numbers (float32 exactly, int8 within a step or two of its logits)
    raw, float32, raw_int8 = [pd.read_csv(next((tmp_path / "s" / "tflite").glob(f"*/res_fold_2_{fmt}.csv")))
                              for fmt in ("raw_float32", "float32", "raw_int8")]
    assert raw["filename"].tolist() == float32["filename"].tolist() == raw_int8["filename"].tolist()
    np.testing.assert_allclose(raw.iloc[:, 3:].to_numpy(float), float32.iloc[:, 3:].to_numpy(float), atol=1e-4)
    np.testing.assert_allclose(raw_int8.iloc[:, 3:].to_numpy(float), int8.iloc[:, 3:].to_numpy(float), atol=0.03)
    assert [line.split(",")[8] for line in lines[4:]] == ["1", "1"]  # twin agreement, written
    assert "raw_int8 against int8 on features computed in Python: the same class for 100.0 %" in result.stdout
    # --show_results lists each evaluated format under its set, with the accuracy the comparison wrote
    shown = subprocess.run([sys.executable, os.path.join(ROOT, "task_esc50.py"), "--show_results", "--param",
                            f"path.application={tmp_path / 's'}"], capture_output=True, text=True, timeout=600)
    formats = [line.split() for line in shown.stdout.splitlines() if line.strip().startswith("as TFLite")]
    assert [f[2] for f in formats] == ["float32", "int8", "raw_float32", "raw_int8"]
    assert formats[1][3:] == [f"{100 * float(int8_row[4]):.1f}", "%", "(one", "fold)", f"{float(int8_row[5]):.3f}"]
    # the int8 model in TensorFlow Lite Micro: as LiteRT on fold 2's 9 clips, and a package for a device
    micro = pd.read_csv(next((tmp_path / "s" / "evaluator").glob("quick_*/tflite_micro.csv")))
    assert [micro[c].tolist() for c in ("fold", "clips", "agreement")] == [[2], [9], [1.0]]
    assert micro["max_step_difference"][0] <= 1  # against LiteRT's reference kernels: a rounding step at most
    package = next((tmp_path / "s" / "tflite").glob("*/micro_fold_2"))
    assert sorted(p.name for p in package.iterdir()) == ["model_data.cc", "model_data.h", "model_settings.h"]
    assert f"tensor arena {micro['arena_bytes'][0]:,} bytes" in result.stdout
    int8_size = float(lines[3].split(",")[3])  # the DCASE size beside it, as in the comparison
    assert micro["size_bytes"][0] == int8_size
    assert f"DCASE size {int8_size / 1024:.1f} KB, tensor arena" in result.stdout
    # --predict_format int8 runs that model on a user's file and says what the testing stage said
    clip = int8["filename"][0]
    predict = [sys.executable, os.path.join(ROOT, "task_esc50.py")] + args[2:-4] + [
        "--predict", os.path.join(root, "audio", clip), "--json", "--top_k", "3"]
    predicted = subprocess.run(predict + ["--predict_format", "int8"], capture_output=True, text=True, timeout=600,
                               cwd=str(tmp_path))
    assert predicted.returncode == 0, predicted.stderr
    answer = json.loads(predicted.stdout)
    assert answer["format"] == "int8" and answer["models"][0].endswith("model_fold_2_int8.tflite")
    for guess in answer["files"][0]["top"]:
        assert guess["probability"] == pytest.approx(int8.loc[0, guess["label"]], abs=1e-5)
    # and --predict_format raw_int8 gives the samples to the raw-audio model, with LiteRT alone: TensorFlow and
    # Keras cannot even be imported here (as on a small device that has neither)
    env = dict(os.environ, PYTHONPATH=NO_TENSORFLOW)
    assert subprocess.run([sys.executable, "-c", "import keras"], env=env, capture_output=True).returncode != 0
    predicted = subprocess.run(predict + ["--predict_format", "raw_int8"], capture_output=True, text=True,
                               timeout=600, cwd=str(tmp_path), env=env)
    assert predicted.returncode == 0, predicted.stderr
    answer = json.loads(predicted.stdout)
    assert answer["format"] == "raw_int8" and answer["models"][0].endswith("model_fold_2_raw_int8.tflite")
    for guess in answer["files"][0]["top"]:
        assert guess["probability"] == pytest.approx(raw_int8.loc[0, guess["label"]], abs=1e-5)
    # the example for a device gives the same labels from the file, and from its samples piped in as they arrive
    example = [sys.executable, os.path.join(ROOT, "examples", "classify_on_device.py"), answer["models"][0],
               str(next((tmp_path / "s" / "tflite").glob("*/labels.txt"))), "--top", "3", "--shifts", "0,30"]
    wav = os.path.join(root, "audio", clip)
    said = subprocess.run(example + [wav], capture_output=True, text=True, timeout=600, env=env)
    assert said.returncode == 0, said.stderr

    def shown(line):  # 'label 0.34, label 0.33, ...' -> {label: probability}
        return {label: float(p) for label, p in (cell.rsplit(" ", 1) for cell in line.split(", "))}
    for line in (said.stdout.splitlines()[-1].split(": ", 1)[1], said.stdout.splitlines()[0].split(": ", 1)[1]):
        assert {k: pytest.approx(raw_int8.loc[0, k], abs=0.0051) for k in shown(line)} == shown(line)
    import soundfile
    pcm = soundfile.read(wav, dtype="int16")[0].tobytes()
    streamed = subprocess.run(example + ["-", "--rate", "44100"], input=pcm, capture_output=True, timeout=600, env=env)
    assert streamed.returncode == 0, streamed.stderr
    (line,) = streamed.stdout.decode().splitlines()
    assert line.startswith("window 1 (0.0 s): ")
    assert {k: pytest.approx(raw_int8.loc[0, k], abs=0.0051) for k in shown(line.split(": ", 1)[1])} == shown(
        line.split(": ", 1)[1])


# On PYTHONPATH, a folder whose sitecustomize.py makes TensorFlow and Keras unimportable in the process it starts.
NO_TENSORFLOW = os.path.join(ROOT, "tools", "no_tensorflow")


def test_recurrent_family_converts_unrolled_and_matches_keras(defaults, tmp_path):
    """A GRU's loop is a TensorList op the converter rejects; the export unrolls it."""
    runtime.setup(0)
    families = dict(defaults["learner"]["families"],
                    small_crnn={"type": "crnn_att", "filters": [4, 8], "gru_units": 4, "dropout": 0.0})
    model = build_model(dict(defaults["learner"], model="small_crnn", families=families), (40, 50), 3)
    x = np.random.default_rng(0).normal(size=(12, 40, 50)).astype(np.float32)
    expected = model_files.predict(model, x)
    for fmt, tolerance in (("float32", 1e-4), ("int8", 0.05)):
        path = str(tmp_path / f"{fmt}.tflite")
        with open(path, "wb") as f:
            f.write(convert(model, fmt, representative=x))
        probabilities, _seconds = TFLiteModel(path).predict(x)
        np.testing.assert_allclose(probabilities, expected, atol=tolerance)
