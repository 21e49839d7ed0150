"""Knowledge distillation: a student set learns from the labels and from a trained teacher set's
predictions (Hinton et al. 2015), the recipe behind the DCASE low-complexity winners (CPJKU's students
of PaSST and CP-ResNet ensembles).

The teacher (any trained set, an ensemble too) predicts every training clip of a fold and every cached
waveform copy of it once; those predictions are cached per fold, in a folder named by the teacher's
trained models and the student's features. The student's loss is

    (1 - weight) * crossentropy(labels, student) + weight * T^2 * KL(teacher_T || student_T)

where x_T = softmax(log x / T): both distributions softened by the temperature T (the log of a softmax
output differs from the logits by a constant per clip, which the softmax cancels). The targets travel as
one row [labels | teacher_T] per clip, so mixup mixes the teacher's targets with the labels' weights.

With `consistent: true` the teacher is not cached but runs inside the training step (LiveTeacher), on the
very batch the student sees after time shift, masks and mixup: cached targets describe the clip before
those, so they disagree with what the student is shown, and with mixup the teacher's mixed targets are
not its prediction of the mixed input (Beyer et al. 2022, "Knowledge distillation: a good teacher is
patient and consistent").
"""
import os

from .. import runtime  # noqa: F401  (before Keras: TensorFlow's settings)
import keras
import numpy as np

from .. import results_io
from ..errors import DamagedFile
from ..models.model_files import load_model

FLOOR = 1e-7  # as Keras clips probabilities for its crossentropy


def soften(probabilities, temperature):
    """softmax(log p / T) per row, in float64: the teacher's targets at temperature T."""
    z = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), 1e-30, 1.0)) / temperature
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


@keras.saving.register_keras_serializable(package="esc50")
class DistillationLoss(keras.losses.Loss):
    """y_true: [one-hot labels | teacher targets at T] (batch, 2 * classes); y_pred: probabilities. With
    `live`, y_true: the labels; y_pred: [student | teacher] probabilities (a LiveTeacher's model)."""

    def __init__(self, n_classes, temperature, weight, label_smoothing=0.0, live=False, name="distillation",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.n_classes, self.temperature, self.weight = n_classes, temperature, weight
        self.label_smoothing, self.live = label_smoothing, live

    def call(self, y_true, y_pred):
        ops, n, t = keras.ops, self.n_classes, self.temperature
        if self.live:
            teacher = ops.softmax(ops.log(ops.clip(ops.cast(y_pred[:, n:], "float32"), 1e-30, 1.0)) / t, axis=-1)
            labels, y_pred = y_true, y_pred[:, :n]
        else:
            labels, teacher = y_true[:, :n], y_true[:, n:]
        if self.label_smoothing:
            labels = labels * (1.0 - self.label_smoothing) + self.label_smoothing / n
        log_p = ops.log(ops.clip(ops.cast(y_pred, "float32"), FLOOR, 1.0))
        crossentropy = -ops.sum(labels * log_p, axis=-1)
        log_student = ops.log_softmax(log_p / t, axis=-1)
        kl = ops.sum(teacher * (ops.log(ops.clip(teacher, 1e-30, 1.0)) - log_student), axis=-1)
        return (1.0 - self.weight) * crossentropy + self.weight * t * t * kl

    def get_config(self):
        return dict(super().get_config(), n_classes=self.n_classes, temperature=self.temperature,
                    weight=self.weight, label_smoothing=self.label_smoothing, live=self.live)


def label_accuracy(n_classes):
    """The student's accuracy against the labels, reported as plain 'accuracy': the label part of [labels |
    teacher] targets, the student part of [student | teacher] predictions."""
    def accuracy(y_true, y_pred):
        return keras.metrics.categorical_accuracy(y_true[:, :n_classes], y_pred[:, :n_classes])
    return keras.metrics.MeanMetricWrapper(accuracy, name="accuracy")


class LiveTeacher:
    """A teacher that predicts inside the student's training step: its trained models (an ensemble's members:
    their mean), each fed the student's normalized input mapped to its own normalization."""

    def __init__(self, model_paths, normalizers, student_normalizer):
        self.model_paths = list(model_paths)
        m, s = student_normalizer.mean, student_normalizer.std
        # (x * s + m - m_t) / s_t: the features the teacher was trained on, per mel band
        self.affine = [((s / n.std)[:, None, None], ((m - n.mean) / n.std)[:, None, None]) for n in normalizers]

    def attach(self, student):
        """A model with the student's layers whose output is [student | teacher] probabilities; training it
        trains the student. Build it in the distribution strategy's scope."""
        teacher = _Teacher([load_model(p) for p in self.model_paths], self.model_paths, self.affine)
        x = keras.Input(student.input_shape[1:])
        both = keras.layers.Concatenate(dtype="float32")([student(x), teacher(x)])
        return keras.Model(x, both, name=f"{student.name}_with_teacher")


class _Teacher(keras.layers.Layer):
    """The teacher's mean probability, always in inference mode (no dropout, batch normalization's moving
    statistics) and never trained."""

    def __init__(self, models, model_paths, affine, **kwargs):
        super().__init__(**dict(kwargs, dtype="float32"))
        self.model_paths = list(model_paths)
        self.affine = [(np.asarray(a, np.float32), np.asarray(b, np.float32)) for a, b in affine]
        self.models = list(models)
        self.trainable = False  # after the models are tracked: it is passed on to them

    def get_config(self):  # (for TensorBoard's graph; the models are read from their files)
        return dict(super().get_config(), model_paths=self.model_paths,
                    affine=[(a.tolist(), b.tolist()) for a, b in self.affine])

    def call(self, x):
        ops = keras.ops
        outputs = [ops.cast(model(x * scale + shift, training=False), "float32")
                   for model, (scale, shift) in zip(self.models, self.affine)]
        return ops.mean(ops.stack(outputs), axis=0)


class TeacherTargets:
    """The teacher's predictions for one fold's training-fold clips and their waveform copies, computed
    once and cached as one .npz per fold (written atomically; a damaged one is computed again)."""

    def __init__(self, folder):
        self.folder = folder

    def path(self, fold):
        return os.path.join(self.folder, f"teacher_fold_{fold}.npz")

    def load(self, fold, names):
        path = self.path(fold)
        saved = results_io.read_arrays(path, required=("names", "clips", "copies"))
        if saved["names"].tolist() != list(names):
            raise DamagedFile(path, "it holds other clips than this fold's training clips")
        return saved["clips"], saved["copies"]

    def save(self, fold, names, clips, copies):
        results_io.write_arrays(self.path(fold), names=np.array(names), clips=clips, copies=copies)

    def get(self, fold, names, compute):
        """(clips, copies) probabilities: from the cache, or `compute()`d and cached."""
        if os.path.exists(self.path(fold)):
            try:
                clips, copies = self.load(fold, names)
                print(f"  Fold {fold}: teacher targets cached ({self.path(fold)})")
                return clips, copies
            except DamagedFile as e:
                print(f"  {e}; the teacher predicts again")
        clips, copies = compute()
        self.save(fold, names, clips, copies)
        return clips, copies
