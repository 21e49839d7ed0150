"""Files damaged on disk (truncated, or bytes overwritten) are recognised, never read as data."""
import numpy as np
import pytest

from esc50_baseline import results_io
from esc50_baseline.errors import DamagedFile, UserError
from esc50_baseline.features.extraction import FeatureCache
from esc50_baseline.features.normalization import Normalizer


def flipped(data, position):
    damaged = bytearray(data)
    damaged[position] ^= 0x5A
    return bytes(damaged)


def test_a_feature_file_with_any_byte_changed_or_cut_is_damaged(tmp_path):
    cache = FeatureCache(str(tmp_path))
    features = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    cache.save("dog.wav", features)
    path = cache.path("dog.wav")
    good = open(path, "rb").read()
    np.testing.assert_array_equal(cache.load("dog.wav"), features)
    for position in range(len(good)):
        open(path, "wb").write(flipped(good, position))
        with pytest.raises(DamagedFile, match="checksum"):
            cache.load("dog.wav")
    for length in range(len(good)):
        open(path, "wb").write(good[:length])
        assert not cache.intact("dog.wav")


def test_feature_files_of_one_stem_and_two_extensions_do_not_share_an_entry(tmp_path):
    cache = FeatureCache(str(tmp_path))
    cache.save("a.wav", np.zeros((2, 2), np.float32))
    cache.save("a.flac", np.ones((2, 2), np.float32))
    assert cache.load("a.wav").sum() == 0 and cache.load("a.flac").sum() == 4


def test_a_normalizer_file_is_read_whole_or_not_at_all(tmp_path):
    path = str(tmp_path / "norm.npz")
    Normalizer(np.arange(5.0), np.arange(1.0, 6.0)).save(path)
    good = open(path, "rb").read()
    caught = 0
    for position in range(len(good)):
        open(path, "wb").write(flipped(good, position))
        try:
            loaded = Normalizer.load(path)
        except DamagedFile:
            caught += 1
            continue
        # a byte the zip format does not check (a time stamp, say) may change; the statistics may not
        np.testing.assert_array_equal(loaded.mean, np.arange(5.0))
        np.testing.assert_array_equal(loaded.std, np.arange(1.0, 6.0))
    assert caught > len(good) // 2
    for length in range(len(good)):
        open(path, "wb").write(good[:length])
        assert not Normalizer.intact(path)
    open(path, "wb").write(good)
    assert Normalizer.intact(path)


def test_prediction_and_result_files_cut_short_are_damaged(tmp_path):
    labels = ["a", "b", "c"]
    path = str(tmp_path / "res.csv")
    probabilities = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    results_io.write_probabilities(path, ["x.wav", "y.wav"], ["c", "a"], probabilities, labels)
    names, truth, read = results_io.read_probabilities(path, labels)
    assert names == ["x.wav", "y.wav"] and truth == ["c", "a"]
    np.testing.assert_allclose(read, probabilities)
    good = open(path, "rb").read()
    for length in range(len(good)):  # a cut loses a line end, a column, a row's sum or a whole row
        open(path, "wb").write(good[:length])
        assert not results_io.probabilities_intact(path, labels, ["x.wav", "y.wav"]), length
    yaml_path = str(tmp_path / "results.yaml")
    results_io.write_yaml(yaml_path, {"set_id": "x", "overall": {"accuracy": 0.5}})
    open(yaml_path, "w").write("set_id: x\noverall: {accuracy: 0.5")
    with pytest.raises(DamagedFile, match="not valid YAML"):
        results_io.read_yaml(yaml_path)
    open(yaml_path, "w").write("\x00\x01garbage")
    with pytest.raises(DamagedFile):
        results_io.read_yaml(yaml_path)


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    from esc50_baseline import runtime  # noqa: F401
    from esc50_baseline.models import model_files
    from esc50_baseline.models.builder import build_model
    runtime.setup(0)
    learner = {"model": "layers", "layers": [{"class_name": "Flatten"},
                                              {"class_name": "Dense", "config": {"units": "CLASS_COUNT",
                                                                                 "activation": "softmax"}}]}
    model = build_model(learner, (4, 6), 3)
    path = str(tmp_path_factory.mktemp("model") / "model_fold_1.keras")
    model_files.save_model_atomic(model, path)
    return model, path


def test_a_truncated_keras_model_is_named(small_model, tmp_path):
    from esc50_baseline.models import model_files
    _model, path = small_model
    assert model_files.model_file_problem(path) is None
    good = open(path, "rb").read()
    damaged = str(tmp_path / "model_fold_1.keras")
    for length in (0, 10, len(good) // 2, len(good) - 1):
        open(damaged, "wb").write(good[:length])
        assert model_files.model_file_problem(damaged)
        with pytest.raises(UserError, match=f"The model {damaged} is damaged .*delete it and run"):
            model_files.load_model(damaged)


def test_a_truncated_tflite_model_is_named(small_model, tmp_path):
    from esc50_baseline.tflite.convert import convert
    from esc50_baseline.tflite.run import TFLiteModel, model_problem
    model, _path = small_model
    path = str(tmp_path / "m.tflite")
    data = convert(model, "float32")
    open(path, "wb").write(data)
    assert model_problem(path) is None
    TFLiteModel(path).predict_one(np.zeros((4, 6), np.float32))
    for length in (0, 16, len(data) // 2):
        open(path, "wb").write(data[:length])
        assert model_problem(path)
        with pytest.raises(UserError, match=f"The TFLite model {path} is damaged"):
            TFLiteModel(path)


def test_a_damaged_checkpoint_means_training_starts_over(small_model, tmp_path, capsys):
    import keras
    from esc50_baseline.training import trainer
    model, _path = small_model
    model.compile(optimizer=keras.optimizers.Adam(), loss="categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    checkpoint = trainer.Checkpoint(str(tmp_path / "checkpoint_fold_1.npz"))
    keeper, _callbacks = trainer.epoch_callbacks("val_accuracy", 1, str(tmp_path / "h.csv"), checkpoint, {})
    checkpoint.save(model, 3, {"loss": [1.0, 0.9, 0.8]}, keeper)
    assert checkpoint.restore(model, keeper)[0] == 3
    good = open(checkpoint.path, "rb").read()
    weights = [w.copy() for w in model.get_weights()]
    open(checkpoint.path, "wb").write(good[:len(good) // 2])
    assert checkpoint.restore(model, keeper) == (0, {})
    assert "is damaged" in capsys.readouterr().out
    for before, after in zip(weights, model.get_weights()):  # nothing was half-assigned
        np.testing.assert_array_equal(before, after)
