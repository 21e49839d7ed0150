"""Which clips every fitted thing sees: the validation split, the normalization statistics, the int8 calibration
and a teacher's targets come from a fold's training folds only, never from its test fold (and the calibration and
the statistics not from its validation clips either). Each test runs the stage's own code on a small dataset whose
clips differ by fold, and spies on what the fitting step is handed: a change that hands it the wrong clips fails.
(The detection thresholds have their own: test_detection.py, test_out_of_fold_thresholds_come_from_the_other_folds
and test_a_fold_without_validation_clips_tunes_out_of_fold.)"""
import os

import numpy as np
import pytest

from conftest import make_dataset
from esc50_baseline.data.dataset import Dataset
from esc50_baseline.features.extraction import FeatureSettings, extract_to_cache
from esc50_baseline.run.context import RunContext
from esc50_baseline.stages.features import do_feature_normalization

FOLD = 2


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Three folds of two classes, three clips each; the features cached once."""
    root = tmp_path_factory.mktemp("fitted")
    make_dataset(str(root / "d"), n_classes=2, n_folds=3, per_fold=3, seconds=1.0)
    return Dataset(str(root / "d")), str(root / "features")


def run_context(defaults, dataset, tmp_path, **learner):
    data, features = dataset
    params = dict(defaults, general=dict(defaults["general"], seed=0),
                  feature_extractor=dict(defaults["feature_extractor"], clip_seconds=1.0),
                  learner=dict(defaults["learner"], validation_amount=0.25, **learner),
                  tflite=dict(defaults["tflite"], representative_samples=4))
    settings = FeatureSettings.from_params(params["feature_extractor"])
    extract_to_cache({c.filename: data.audio_path(c) for c in data.clips}, settings, features, show_progress=False)
    paths = {"features": features, "normalization": str(tmp_path / "norm"), "learner": str(tmp_path / "learner"),
             "tflite": str(tmp_path / "tflite"), "teacher_targets": str(tmp_path / "targets")}
    ctx = RunContext(params=params, dataset=data, folds=[FOLD], paths=paths)
    do_feature_normalization(ctx)
    return ctx


def names(clips):
    return {c.filename for c in clips}


def rows_of(ctx, clips):
    """{bytes of a clip's normalized features: its name}: to tell which clips an array's rows are."""
    normalized = ctx.normalizer(FOLD)(ctx.features(clips))
    return {row.tobytes(): c.filename for row, c in zip(normalized, clips)}


@pytest.mark.parametrize("learner", [{}, {"validation_folds": [3]}], ids=["drawn", "held-out fold"])
def test_the_validation_split_comes_from_the_training_folds_and_never_holds_a_test_clip(defaults, dataset, tmp_path,
                                                                                        learner):
    ctx = run_context(defaults, dataset, tmp_path, **learner)
    train, validation, test = ctx.split(FOLD)
    assert validation and train and test
    assert {c.fold for c in test} == {FOLD} and FOLD not in {c.fold for c in train + validation}
    assert not names(train) & names(validation)
    assert names(train) | names(validation) == names(ctx.dataset.train(FOLD))
    if learner:
        assert {c.fold for c in validation} == {3}


def test_int8_calibration_is_a_draw_of_the_training_clips_alone(defaults, dataset, tmp_path, monkeypatch):
    """The conversion stage hands `convert` features of the fold's training clips, not of its validation or test
    clips, and the raw-audio int8 model the same clips' samples."""
    from esc50_baseline.models import model_files
    from esc50_baseline.stages import tflite as stage
    from esc50_baseline.tflite import convert, raw_audio, run
    ctx = run_context(defaults, dataset, tmp_path)
    ctx.params["tflite"] = dict(ctx.params["tflite"], formats=["int8", "raw_int8"], strip_strings=False)
    os.makedirs(ctx.paths["learner"])
    open(ctx.model_path(FOLD), "wb").close()
    handed = {}
    monkeypatch.setattr(model_files, "load_model", lambda path: "model")
    monkeypatch.setattr(model_files, "as_float32", lambda model: model)
    monkeypatch.setattr(run, "model_problem", lambda path, raw_audio=False: "missing")
    def hand(fmt, data):
        handed[fmt] = data
        return b"not a model"

    monkeypatch.setattr(convert, "convert", lambda model, fmt, representative, strip: hand(fmt, representative))
    monkeypatch.setattr(raw_audio, "convert_raw", lambda model, fmt, extractor, normalizer, samples: hand(fmt, samples))
    stage.do_tflite_conversion(ctx)
    train, validation, test = ctx.split(FOLD)
    seen = [rows_of(ctx, train).get(row.tobytes()) for row in handed["int8"]]
    assert len(seen) == 4 and None not in seen  # every calibration row is a training clip's features
    assert not set(seen) & (names(validation) | names(test))
    chosen = stage.calibration_clips(ctx, FOLD)
    assert [c.filename for c in chosen] == seen
    samples = stage.model_inputs(ctx, FOLD, chosen)("raw_int8")[0]
    np.testing.assert_array_equal(handed["raw_int8"], samples)  # the raw model: the same clips' samples


def test_a_teachers_targets_are_its_predictions_of_the_training_folds_clips(defaults, dataset, tmp_path, monkeypatch):
    """The teacher predicts every clip of the fold's training folds (the student's validation clips among them, for
    its validation targets), never a test clip; the student's targets are its rows for the student's own split."""
    from esc50_baseline.models import model_files
    from esc50_baseline.stages.learning import distillation_teacher
    learner = {"distillation": dict(defaults["learner"]["distillation"], teacher="t", temperature=1.0)}
    ctx = run_context(defaults, dataset, tmp_path, **learner)
    ctx.teacher = run_context(defaults, dataset, tmp_path / "teacher")
    predicted = []

    def predict(model, x):
        predicted.append(x)
        share = np.linspace(0.1, 0.9, len(x))[:, None]  # a row per clip, told apart by its value
        return np.hstack([share, 1 - share])

    monkeypatch.setattr(model_files, "load_model", lambda path: "teacher")
    monkeypatch.setattr(model_files, "predict", predict)
    train, validation, test = ctx.split(FOLD)
    train_targets, val_targets = distillation_teacher(ctx, FOLD, train, validation)
    (x,) = predicted
    pool = ctx.dataset.train(FOLD)
    rows = [rows_of(ctx.teacher, pool).get(row.tobytes()) for row in x]
    assert rows == [c.filename for c in pool] and not set(rows) & names(test)
    value = dict(zip(rows, np.linspace(0.1, 0.9, len(x))))
    np.testing.assert_allclose(train_targets, [[value[c.filename], 1 - value[c.filename]] for c in train])
    np.testing.assert_allclose(val_targets, [[value[c.filename], 1 - value[c.filename]] for c in validation])
