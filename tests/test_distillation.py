"""Knowledge distillation: the loss by hand, the teacher's targets under mixup, and the teacher cache."""
import glob
import os
import signal
import subprocess
import sys
import time
import types

import numpy as np
import pytest
import yaml

from esc50_baseline.run import setup
from conftest import ROOT, make_dataset
from test_features import shipped_params
from esc50_baseline import runtime  # noqa: F401
from esc50_baseline.training.distillation import DistillationLoss, soften

SCRIPT = os.path.join(ROOT, "task_esc50.py")


def test_the_loss_of_a_known_teacher_and_student_by_hand():
    teacher = np.array([0.7, 0.2, 0.1])
    student = np.array([0.5, 0.3, 0.2])
    label = np.array([1.0, 0.0, 0.0])
    t, w = 2.0, 0.5
    p_t = teacher ** (1 / t) / np.sum(teacher ** (1 / t))  # softmax(log p / T)
    q_t = student ** (1 / t) / np.sum(student ** (1 / t))
    expected = (1 - w) * -np.log(0.5) + w * t * t * np.sum(p_t * np.log(p_t / q_t))
    loss = DistillationLoss(3, t, w)(np.concatenate([label, soften(teacher, t)])[None].astype(np.float32),
                                     student[None].astype(np.float32))
    assert abs(float(loss) - expected) < 1e-5
    np.testing.assert_allclose(soften(teacher, t), p_t)


def test_weight_zero_is_the_label_crossentropy_with_smoothing():
    import keras
    rng = np.random.default_rng(0)
    student = rng.dirichlet(np.ones(5), size=8).astype(np.float32)
    labels = np.eye(5, dtype=np.float32)[rng.integers(0, 5, 8)]
    teacher = rng.dirichlet(np.ones(5), size=8).astype(np.float32)
    ours = DistillationLoss(5, 3.0, 0.0, label_smoothing=0.1)(np.concatenate([labels, teacher], axis=1), student)
    plain = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(labels, student)
    assert abs(float(ours) - float(plain)) < 1e-5
    matched = DistillationLoss(5, 3.0, 1.0)(np.concatenate([labels, soften(student, 3.0)], axis=1), student)
    assert abs(float(matched)) < 1e-5  # a student that is its teacher has nothing to learn from it


def test_soften_is_softmax_of_tempered_logits():
    logits = np.array([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    tempered = np.exp(logits / 4.0) / np.exp(logits / 4.0).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(soften(p, 4.0), tempered)
    np.testing.assert_allclose(soften(p, 1.0), p)


def test_mixup_mixes_the_teachers_targets_with_the_labels_weights():
    import tensorflow as tf
    from esc50_baseline.features.spectrogram_augmentation import augment
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 4, 5, 1)).astype(np.float32)
    labels = np.eye(3, dtype=np.float32)[[0, 0, 1, 2, 1, 2]]  # every clip's mixup partner is of another class
    teacher = rng.dirichlet(np.ones(3), size=6).astype(np.float32)
    settings = {"time_shift": 0, "freq_masks": 0, "time_masks": 0, "mixup_alpha": 0.4}
    _x, y = augment(tf.constant(x), tf.constant(np.concatenate([labels, teacher], axis=1)), tf.constant([3, 7]), settings)
    y = np.asarray(y)
    partner = np.arange(6)[::-1]
    lam = y[np.arange(6), labels.argmax(axis=1)]  # the label part: lam on the clip's class, 1 - lam on its partner's
    np.testing.assert_allclose(y[:, :3], lam[:, None] * labels + (1 - lam[:, None]) * labels[partner], atol=1e-6)
    assert ((lam > 0.01) & (lam < 0.99)).any()
    np.testing.assert_allclose(y[:, 3:], lam[:, None] * teacher + (1 - lam[:, None]) * teacher[partner], atol=1e-6)


def command(params_file, dataset, app, *extra):
    return [sys.executable, SCRIPT, "--params_file", params_file, "--dataset_path", dataset, "--set", "quick",
            "--param", "learner.epochs=3", "--param", "learner.distillation.teacher=teacher",
            "--param", f"path.application={app}", *extra]


def write_params_with_a_teacher(folder):
    """The project's parameter file with one more set, a teacher that trains as quickly as its student; its path."""
    text = open(os.path.join(ROOT, "task_esc50.yaml")).read()
    teacher = ("  - set_id: teacher\n    description: cnn3 for 3 epochs\n"
               "    learner: {model: cnn3, epochs: 3, monitor: {metric: last}}\n\ndefaults:")
    path = folder / "params.yaml"
    path.write_text(text.replace("\ndefaults:", "\n" + teacher, 1))
    return str(path)


def final_numbers(app):
    data = yaml.safe_load(open(glob.glob(os.path.join(app, "evaluator", "quick_*", "results.yaml"))[0]))
    return data["overall"], data["class_wise"]


def test_the_teachers_models_name_its_targets_and_the_students_caches(defaults, tmp_path):
    """Another teacher (other models, or one more): other targets and another student. Another weight of
    the teacher's share: the same targets, another student. The features are the student's own either way."""
    def paths(teacher_models, weight=0.5, copies=4):
        distillation = dict(defaults["learner"]["distillation"], teacher="t", weight=weight)
        augmentation = defaults["learner"]["augmentation"]
        augmentation = dict(augmentation, waveform=dict(augmentation["waveform"], copies=copies))
        teacher = types.SimpleNamespace(sets=lambda: [types.SimpleNamespace(paths={"learner": f"/a/learner/{h}"})
                                                      for h in teacher_models])
        params = shipped_params(defaults,
                                **{"learner.distillation": distillation, "learner.augmentation": augmentation})
        return setup.stage_paths(params, types.SimpleNamespace(root=str(tmp_path)), teacher)

    first = paths(["h1"])
    for other in (paths(["h2"]), paths(["h1", "h2"])):
        assert {stage for stage in first if first[stage] != other[stage]} == {
            "teacher_targets", "learner", "recognizer", "tflite", "results", "sed"}
    heavier = paths(["h1"], weight=0.8)
    assert {stage for stage in first if first[stage] != heavier[stage]} == {"learner", "recognizer", "tflite",
                                                                          "results", "sed"}
    # fewer copies: the same copies' cache (it holds them), targets of fewer copies, another student
    fewer = paths(["h1"], copies=2)
    assert {stage for stage in first if first[stage] != fewer[stage]} == {
        "teacher_targets", "learner", "recognizer", "tflite", "results", "sed"}


def test_the_teacher_is_trained_first_and_its_targets_cached(tmp_path):
    dataset = str(tmp_path / "d")
    make_dataset(dataset, n_classes=3, n_folds=3, per_fold=3, seconds=1.0)
    params = write_params_with_a_teacher(tmp_path)
    app = str(tmp_path / "a")
    first = subprocess.run(command(params, dataset, app), capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    reference = final_numbers(app)
    out = first.stdout
    assert "Teacher set teacher" in out and out.index("Teacher set teacher") < out.index("Student set quick")
    assert "Fold 3: the teacher predicts 18 training clips" in out
    [cached] = glob.glob(f"{app}/teacher_targets/*/teacher_fold_3.npz")
    with np.load(cached) as data:
        names, clips = data["names"].tolist(), data["clips"]
    assert len(names) == 18 and all(not n.startswith("3-") for n in names)  # fold 3's training clips only
    np.testing.assert_allclose(clips.sum(axis=1), 1.0, rtol=1e-5)
    stamp = os.path.getmtime(cached)

    again = subprocess.run(command(params, dataset, app, "--param", "learner.distillation.weight=0.8"),
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "teacher targets cached" in again.stdout and ": epoch 3/3, " in again.stdout  # a new student, old targets
    assert os.path.getmtime(cached) == stamp

    # killed once the teacher's model exists (teacher done, student not yet): the same numbers in the end
    killed = str(tmp_path / "b")
    process = subprocess.Popen(command(params, dataset, killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not glob.glob(f"{killed}/learner/*/model_fold_3.keras") and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    final = subprocess.run(command(params, dataset, killed), capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    assert final_numbers(killed) == reference


def test_a_live_teachers_loss_is_the_cached_teachers_on_the_same_predictions():
    rng = np.random.default_rng(2)
    student = rng.dirichlet(np.ones(4), size=6).astype(np.float32)
    teacher = rng.dirichlet(np.ones(4), size=6).astype(np.float32)
    labels = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 6)]
    cached = DistillationLoss(4, 2.0, 0.7, label_smoothing=0.1)(
        np.concatenate([labels, soften(teacher, 2.0)], axis=1).astype(np.float32), student)
    live = DistillationLoss(4, 2.0, 0.7, label_smoothing=0.1, live=True)(labels, np.concatenate([student, teacher], 1))
    assert abs(float(live) - float(cached)) < 1e-5


def trained_tiny(defaults, tmp_path, name, seed, x, y):
    """A tiny network (with dropout) trained for 2 epochs and saved; its path."""
    from esc50_baseline.models import model_files
    from esc50_baseline.training import trainer
    from esc50_baseline.models.builder import build_model
    from test_training import small_learner
    runtime.setup(seed)
    learner = small_learner(defaults, epochs=2)
    learner["families"]["tiny"]["dropout"] = 0.5
    model = build_model(learner, x.shape[1:], 4)
    trainer.train_fold(model, x, y, x[:0], y[:0], 4, learner, seed, str(tmp_path / f"log_{name}"))
    path = str(tmp_path / f"{name}.keras")
    model_files.save_model_atomic(model, path)
    return path


def test_a_live_teacher_predicts_what_the_student_is_shown_in_its_own_normalization_and_is_not_trained(
        defaults, tmp_path):
    from esc50_baseline.features.normalization import Normalizer
    from esc50_baseline.models.builder import build_model
    from esc50_baseline.models import model_files
    from esc50_baseline.training import trainer
    from esc50_baseline.training.distillation import LiveTeacher
    from test_training import kill_after, separable, small_learner
    rng = np.random.default_rng(0)
    raw, y = separable(10, 4, rng)
    raw = raw * 2.0 + 5.0  # features before normalization
    own = [Normalizer(rng.normal(5, 1, 40), rng.uniform(1, 3, 40)) for _ in range(2)]  # each teacher's own
    paths = [trained_tiny(defaults, tmp_path, f"t{i}", i, own[i](raw), y) for i in range(2)]
    teachers = [model_files.load_model(p) for p in paths]
    expected = np.mean([model_files.predict(t, n(raw)) for t, n in zip(teachers, own)], axis=0)
    student_norm = Normalizer.fit(raw)
    live = LiveTeacher(paths, own, student_norm)
    learner = dict(small_learner(defaults, epochs=4), monitor={"metric": "last", "initial_delay": 0},
                   distillation=dict(defaults["learner"]["distillation"], teacher="t", consistent=True, weight=0.8))
    student = build_model(learner, raw.shape[1:], 4)
    both = live.attach(student)
    x = student_norm(raw)[..., np.newaxis]
    for training in (False, True):  # in a training step too: no dropout, the moving statistics
        out = np.asarray(both(x, training=training))
        np.testing.assert_allclose(out[:, 4:], expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(both(x))[:, :4], model_files.predict(student, student_norm(raw)), rtol=1e-5)
    assert [id(v) for v in both.trainable_weights] == [id(v) for v in student.trainable_weights]

    def run(checkpoint, extra=()):
        runtime.setup(3)
        model = build_model(learner, raw.shape[1:], 4)
        history, _, _ = trainer.train_fold(model, student_norm(raw), y, raw[:0], y[:0], 4, learner, 3,
                                           str(tmp_path / "log"), checkpoint_path=str(checkpoint),
                                           extra_callbacks=extra, teacher=live)
        return model, history

    model, history = run(tmp_path / "a.npz")
    assert np.isfinite(history["loss"]).all() and set(history) >= {"loss", "accuracy"}
    assert any(not np.array_equal(a, b) for a, b in zip(model.get_weights(), student.get_weights()))
    for t, p in zip(teachers, paths):  # the teachers' files, and so what they predict, are as they were
        np.testing.assert_array_equal(model_files.predict(model_files.load_model(p), raw), model_files.predict(t, raw))
    with pytest.raises(KeyboardInterrupt):  # a kill mid-way resumes to the same student
        run(tmp_path / "b.npz", [kill_after(2)])
    resumed, resumed_history = run(tmp_path / "b.npz")
    assert resumed_history == history
    for a, b in zip(model.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    runtime.setup(0)


def test_consistent_teaching_changes_the_students_hash_but_off_it_changes_nothing(defaults, tmp_path):
    def learner_path(**distillation):
        params = shipped_params(defaults, **{"learner.distillation": dict(
            {k: v for k, v in defaults["learner"]["distillation"].items() if k != "consistent"}, **distillation)})
        return setup.stage_paths(params, types.SimpleNamespace(root=str(tmp_path)))["learner"]

    before = learner_path(teacher="t")  # the settings as they were before the key existed
    assert learner_path(teacher="t", consistent=False) == before
    assert learner_path(teacher="t", consistent=True) != before
    assert learner_path(teacher=None, consistent=True) == learner_path(teacher=None)


def test_a_consistent_student_trains_without_cached_targets(tmp_path):
    dataset = str(tmp_path / "d")
    make_dataset(dataset, n_classes=3, n_folds=3, per_fold=3, seconds=1.0)
    params = write_params_with_a_teacher(tmp_path)
    app = str(tmp_path / "a")
    run = subprocess.run(command(params, dataset, app, "--param", "learner.distillation.consistent=true"),
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "Fold 3: the teacher (1 model) predicts every training batch as the student sees it" in run.stdout
    assert not glob.glob(f"{app}/teacher_targets/*/*.npz")
    overall, _ = final_numbers(app)
    assert 0.0 <= overall["accuracy"] <= 1.0 and np.isfinite(overall["logloss"])
