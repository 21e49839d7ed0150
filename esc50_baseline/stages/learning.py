"""The learning stage: each fold's network trained on its training clips (and their cached waveform-augmented
copies), with a teacher's predictions where the set distils one; the model saved whole, float32."""
import time

import numpy as np

from .. import atomic, results_io
from ..data.dataset import fold_seed, fold_title
from ..evaluation import tables
from .common import section, stale


def do_learning(ctx):
    section("Learning")
    for fold in ctx.folds:
        # Two runs that need one fold's model (two commands, or a student whose teacher another run trains)
        # take turns: the second reads the first's model from the cache instead of training it again.
        with atomic.exclusive(ctx.training_lock_path(fold),
                              waiting=f"  {fold_title(fold)}: another run is training it; waiting for its model"):
            learn_fold(ctx, fold)


def learn_fold(ctx, fold):
    """Train fold `fold`'s model, or find it cached (whole, and newer than its normalization)."""
    from ..models import model_files
    from ..training.fold import FoldData, FoldFiles, train_and_save
    learner, general = ctx.params["learner"], ctx.params["general"]
    model_path = ctx.model_path(fold)
    # features.model_cached makes this decision ahead, before normalization, to know whose copies to make: keep
    # them alike
    if not ctx.overwrite and not stale(model_path, ctx.norm_path(fold)):
        problem = model_files.model_file_problem(model_path)
        if not problem:
            print(f"  {fold_title(fold)}: trained model cached ({model_path})")
            return
        print(f"  {fold_title(fold)}: the cached model {model_path} is damaged ({problem}); training it again")
    normalizer = ctx.normalizer(fold)
    train, validation, test = ctx.split(fold)
    write_split(ctx.split_path(fold), train, validation, test)
    copies = ctx.augmented_features(train)
    data = FoldData(normalizer(ctx.features(train)), ctx.dataset.target_index(train),
                    normalizer(ctx.features(validation)), ctx.dataset.target_index(validation),
                    len(ctx.dataset.labels), copies=normalizer(copies) if copies is not None else None,
                    teacher=ctx.teacher and (lambda: distillation_teacher(ctx, fold, train, validation)),
                    normalizer=normalizer)
    files = FoldFiles(model_path, ctx.log_dir(fold), ctx.checkpoint_path(fold), ctx.training_curves_path(fold))
    started = time.monotonic()
    # Seeding per fold makes a fold's result independent of which other folds run (--folds).
    best_epoch, best, resumed = train_and_save(learner, data, fold_seed(general["seed"], fold),
                                               general["deterministic"], files,
                                               f"{ctx.params['set_id']}, {fold_title(fold).lower()}",
                                               f"{fold_title(fold)}", fresh=ctx.overwrite)
    kept = f"epoch {best_epoch} ({learner['monitor']['metric']} {best:.3f})" if best_epoch else "last epoch"
    runs = f" (over every run: {tables.describe_training_time(*training_time(ctx, fold))})" if resumed else ""
    print(f"  {fold_title(fold)}: trained in {time.monotonic() - started:.0f} s{runs}, kept {kept}")


def training_time(ctx, fold):
    """(seconds, timed epochs, epochs) of fold `fold`'s training: the wall-clock time of its epochs (an
    ensemble's members' summed), from the learners' history CSVs, so a training resumed over several runs is
    counted whole and the pauses between the runs are not. A teacher's training is its own set's."""
    from ..training.trainer import training_seconds
    times = [training_seconds(member.history_path(fold))
             for member in ctx.sets()]
    return tuple(map(sum, zip(*times)))


def write_split(path, train, validation, test):
    """Which clips one fold trained, validated and tested on, so that a reader can check the split."""
    results_io.write_csv(path, ["filename", "fold", "src_file", "category", "role"],
                         [[c.filename, c.fold, c.src_file, c.category, role]
                          for role, clips in (("train", train), ("validation", validation), ("test", test))
                          for c in clips])


def distillation_teacher(ctx, fold, train, validation):
    """What the student learns from besides the labels: None without a teacher; a consistent teacher as a
    LiveTeacher, whose models predict every training batch as the student sees it; otherwise the teacher's
    targets at the distillation temperature for (training rows, copies' rows after them; validation rows),
    its predictions of all the fold's training clips and their copies computed once and cached."""
    if not ctx.teacher:
        return None
    from ..models import model_files
    from ..training import distillation
    if ctx.params["learner"]["distillation"]["consistent"]:
        members = ctx.teacher.sets()
        models = f"{len(members)} model{'s' if len(members) > 1 else ''}"
        print(f"  {fold_title(fold)}: the teacher ({models}) predicts every "
              "training batch as the student sees it", flush=True)
        return distillation.LiveTeacher([t.model_path(fold) for t in members], [t.normalizer(fold) for t in members],
                                        ctx.normalizer(fold))
    pool = ctx.dataset.train(fold)  # every training-fold clip: the validation split does not change them
    names = [c.filename for c in pool]

    def predict():
        copies = ctx.augmented_features(pool)
        print(f"  {fold_title(fold)}: the teacher predicts {len(pool)} training clips"
              + (f" and their {len(copies)} copies each" if copies is not None else ""), flush=True)
        clips, copied = 0.0, 0.0
        for teacher in ctx.teacher.sets():  # an ensemble teacher: its members' mean
            model, normalizer = model_files.load_model(teacher.model_path(fold)), teacher.normalizer(fold)
            clips = clips + model_files.predict(model, normalizer(ctx.features(pool)))
            if copies is not None:
                flat = normalizer(copies.reshape((-1,) + copies.shape[2:]))
                copied = copied + model_files.predict(model, flat).reshape(copies.shape[:2] + (-1,))
        n = len(ctx.teacher.sets())
        return clips / n, (copied / n if copies is not None else np.zeros((0, len(pool), clips.shape[1])))

    clips, copies = distillation.TeacherTargets(ctx.paths["teacher_targets"]).get(fold, names, predict)
    row = {name: i for i, name in enumerate(names)}
    rows, val_rows = [row[c.filename] for c in train], [row[c.filename] for c in validation]
    temperature = ctx.params["learner"]["distillation"]["temperature"]
    train_targets = np.concatenate([clips[rows]] + [copy[rows] for copy in copies])
    return distillation.soften(train_targets, temperature), distillation.soften(clips[val_rows], temperature)
