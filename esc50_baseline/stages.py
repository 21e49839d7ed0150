"""The stages of the system, in the DCASE style: each reads the previous stage's cached output, writes its
own to a folder named by the hash of the parameters it depends on, and skips work already done.

Both task scripts run these functions; the TFLite script adds its own stages after them.
"""
import os
import time
from dataclasses import dataclass, field

import numpy as np

from . import atomic, config, interrupts, results_io
from .evaluation import metrics, plots, tables, test_time
from .data.dataset import fold_seed, validation_split
from .errors import DamagedFile, UserError
from .features.extraction import FeatureCache, FeatureSettings, extract_to_cache
from .features.normalization import Normalizer


@dataclass
class RunContext:
    """What every stage needs: the resolved parameters, the dataset, the active folds and the folders."""
    params: dict
    dataset: object
    folds: list
    paths: dict
    overwrite: bool = False
    members: list = field(default_factory=list)  # an ensemble's member sets (their RunContexts)
    teacher: object = None  # the RunContext of the set this one learns from (learner.distillation.teacher)
    _features: dict = field(default_factory=dict)

    def sets(self):
        """The trained sets whose predictions this set's are: its members, or itself."""
        return self.members or [self]

    def every_set(self):
        """This set, its members and its teacher, and theirs."""
        yield self
        for other in self.members + ([self.teacher] if self.teacher else []):
            yield from other.every_set()

    @property
    def settings(self):
        return FeatureSettings.from_params(self.params["feature_extractor"])

    def features(self, clips):
        """(clips, n_mels, n_frames) float32, read from the cache once per run and kept in memory."""
        cache = FeatureCache(self.paths["features"])
        missing = [c.filename for c in clips if c.filename not in self._features and not cache.has(c.filename)]
        if missing:
            raise UserError(f"Features of {len(missing)} clip(s) are not in the cache {self.paths['features']} "
                            f"(e.g. {missing[0]}); enable flow.feature_extraction and run again.")
        for c in clips:
            if c.filename not in self._features:
                self._features[c.filename] = _cached(cache.load, c.filename)
        if not clips:  # e.g. no validation clips (learner.validation_amount: 0)
            shape = next(iter(self._features.values())).shape if self._features else (0, 0)
            return np.zeros((0,) + shape, np.float32)
        return np.stack([self._features[c.filename] for c in clips])

    @property
    def waveform_augmentation(self):
        from .features.waveform_augmentation import WaveformSettings
        return WaveformSettings.from_params(self.params["learner"]["augmentation"]["waveform"])

    def augmented_features(self, clips):
        """(copies, clips, n_mels, n_frames): the cached waveform-augmented copies, or None when off."""
        from .features.waveform_augmentation import copy_name
        copies = self.waveform_augmentation.copies
        if not copies:
            return None
        cache = FeatureCache(self.paths["augmented_features"])
        names = [copy_name(c.filename, k) for k in range(1, copies + 1) for c in clips]
        missing = [n for n in names if not cache.has(n)]
        if missing:
            raise UserError(f"{len(missing)} augmented copies are not in the cache {self.paths['augmented_features']} "
                            f"(e.g. {missing[0]}); enable flow.feature_extraction and run again.")
        return _cached(cache.load_many, names).reshape((copies, len(clips)) + self.settings.shape)

    def split(self, fold):
        """(train, validation, test) clips of one fold; validation is drawn from the training folds, or is the
        training folds named by learner.validation_folds."""
        held = {str(f) for f in self.params["learner"]["validation_folds"]}
        if held:
            train = self.dataset.train(fold)
            return ([c for c in train if str(c.fold) not in held], [c for c in train if str(c.fold) in held],
                    self.dataset.test(fold))
        seed = fold_seed(self.params["general"]["seed"], fold)
        train, validation = validation_split(self.dataset.train(fold), self.params["learner"]["validation_amount"], seed)
        return train, validation, self.dataset.test(fold)

    def path(self, stage, name):
        return os.path.join(self.paths[stage], name)

    def norm_path(self, fold):
        return self.path("normalization", f"norm_fold_{fold}.npz")

    def model_path(self, fold):
        return self.path("learner", f"model_fold_{fold}.keras")

    def normalizer(self, fold):
        return _cached(Normalizer.load, need(self.norm_path(fold), "feature_normalization"))


def _cached(load, *args):
    """A cache entry read by a later stage; one that was damaged since its stage checked it is named."""
    try:
        return load(*args)
    except DamagedFile as e:
        raise UserError(f"{e}; run the same command again: the stage that wrote it checks its cache and computes "
                        "damaged entries again.") from None


def section(title, underline="="):
    print(f"\n{title}\n{underline * len(title)}", flush=True)


def stale(output, *inputs):
    """True when `output` is missing or older than any existing input it was computed from."""
    if not os.path.exists(output):
        return True
    mtime = os.path.getmtime(output)
    return any(os.path.exists(i) and os.path.getmtime(i) > mtime for i in inputs)


def do_feature_extraction(ctx):
    section("Feature extraction")
    settings = ctx.settings
    print(f"  log-mel {settings.n_mels} x {settings.n_frames} per clip, cache {ctx.paths['features']}")
    started = time.monotonic()
    clips = {c.filename: ctx.dataset.audio_path(c) for c in ctx.dataset.clips}
    failures = extract_to_cache(clips, settings, ctx.paths["features"],
                                workers=ctx.params["general"]["workers"], overwrite=ctx.overwrite)
    if failures:
        names = sorted(failures)
        listing = "; ".join(failures[n] for n in names[:5]) + ("; ..." if len(names) > 5 else "")
        if ctx.params["dataset"]["on_bad_audio"] == "stop":
            raise UserError(f"{len(failures)} clip(s) could not be read: {listing}; replace or remove them, "
                            "or set dataset.on_bad_audio: skip to leave them out.")
        print(f"  Skipped {len(failures)} unreadable clip(s): {', '.join(names)}")
        ctx.dataset.without(names)
    print(f"  {len(ctx.dataset.clips)} clips ready in {time.monotonic() - started:.1f} s")
    if ctx.waveform_augmentation.copies:
        _augmented_feature_extraction(ctx)


def _augmented_feature_extraction(ctx):
    """The waveform-augmented copies of every clip that some fold still to be trained trains on: only training
    reads them (a teacher's targets are made while its student trains)."""
    from .features import waveform_augmentation
    settings, augmentation = ctx.settings, ctx.waveform_augmentation
    folds = [fold for fold in ctx.folds if ctx.overwrite or not _model_cached(ctx, fold)]
    if not folds:
        print(f"  {augmentation.copies} augmented copies a clip: not needed, every active fold's model is cached")
        return
    training = sorted({c for fold in folds for c in ctx.dataset.train(fold)}, key=lambda c: c.filename)
    mates = {}
    for c in ctx.dataset.clips:
        mates.setdefault(c.fold, []).append(ctx.dataset.audio_path(c))
    jobs = waveform_augmentation.jobs([(c.filename, ctx.dataset.audio_path(c), c.fold) for c in training], mates,
                                      augmentation, ctx.params["general"]["seed"])
    print(f"  {augmentation.copies} augmented copies of {len(training)} training clips, "
          f"cache {ctx.paths['augmented_features']}")
    started = time.monotonic()
    failures = extract_to_cache(jobs, settings, ctx.paths["augmented_features"],
                                workers=ctx.params["general"]["workers"], overwrite=ctx.overwrite,
                                augmentation=augmentation, label="augmented")
    if failures:
        raise UserError(f"{len(failures)} augmented copies could not be made: "
                        f"{next(iter(failures.values()))}; replace or remove that clip and run again.")
    print(f"  {len(jobs)} augmented copies ready in {time.monotonic() - started:.1f} s")


def _model_cached(ctx, fold):
    """Whether the learning stage will read fold `fold`'s model from the cache rather than train it: the model
    is whole and newer than an intact normalization (one that is damaged or missing is fitted again, which
    makes the model stale). _learn_fold decides it again after normalization, when a missing one means that stage
    was off."""
    from .models.model_files import model_file_problem
    model, norm = ctx.model_path(fold), ctx.norm_path(fold)
    return (os.path.exists(norm) and Normalizer.intact(norm) and not stale(model, norm)
            and not model_file_problem(model))


def do_feature_normalization(ctx):
    section("Feature normalization")
    for fold in ctx.folds:
        path = ctx.norm_path(fold)
        if os.path.exists(path) and not ctx.overwrite:
            if Normalizer.intact(path):
                print(f"  Fold {fold}: cached")
                continue
            print(f"  Fold {fold}: the cached {path} is damaged; fitting it again")
        train, _validation, _test = ctx.split(fold)
        Normalizer.fit(ctx.features(train)).save(path)
        print(f"  Fold {fold}: mean and std of {len(train)} training clips")


def do_learning(ctx):
    section("Learning")
    for fold in ctx.folds:
        # Two runs that need one fold's model (two commands, or a student whose teacher another run trains)
        # take turns: the second reads the first's model from the cache instead of training it again.
        with atomic.exclusive(ctx.path("learner", f".training_fold_{fold}.lock"),
                              waiting=f"  Fold {fold}: another run is training it; waiting for its model"):
            _learn_fold(ctx, fold)


def _learn_fold(ctx, fold):
    from .models import model_files
    from . import runtime
    from .training import fused_batch_norm, trainer
    from .models.builder import build_model
    from .models.complexity import spatial_conv_share
    learner, general = ctx.params["learner"], ctx.params["general"]
    model_path = ctx.model_path(fold)
    # _model_cached makes this decision ahead, before normalization, to know whose copies to make: keep them alike
    if not ctx.overwrite and not stale(model_path, ctx.norm_path(fold)):
        problem = model_files.model_file_problem(model_path)
        if not problem:
            print(f"  Fold {fold}: trained model cached ({model_path})")
            return
        print(f"  Fold {fold}: the cached model {model_path} is damaged ({problem}); training it again")
    import keras
    keras.backend.clear_session()
    interrupts.check()  # a SIGTERM that landed in a finalizer of the last fold's graph (seen here) stops now
    # Seeding per fold makes a fold's result independent of which other folds run (--folds).
    n_classes = len(ctx.dataset.labels)
    print("  " + runtime.setup(fold_seed(general["seed"], fold), general["deterministic"], learner["mixed_precision"],
                               lambda: spatial_conv_share(build_model(learner, ctx.settings.shape, n_classes))))
    normalizer = ctx.normalizer(fold)
    train, validation, test = ctx.split(fold)
    write_split(ctx.path("learner", f"split_fold_{fold}.csv"), train, validation, test)
    x_train, x_val = normalizer(ctx.features(train)), normalizer(ctx.features(validation))
    copies = ctx.augmented_features(train)
    copies = normalizer(copies) if copies is not None else None
    strategy = runtime.distribution_strategy(learner["distribution"])
    with strategy.scope():
        model = fused_batch_norm.for_training(build_model(learner, x_train.shape[1:], n_classes))
    _print_complexity(model)
    print(f"  Fold {fold}: {len(train)} training, {len(validation)} validation clips, "
          f"{learner['epochs']} epochs, batch {learner['batch_size']}", flush=True)
    started = time.monotonic()
    log_dir = ctx.path("learner", f"logs_fold_{fold}")
    checkpoint = ctx.path("learner", f"checkpoint_fold_{fold}.npz")
    resumed = os.path.exists(checkpoint) and not ctx.overwrite
    if ctx.overwrite and os.path.exists(checkpoint):
        os.remove(checkpoint)
    elif resumed:
        print(f"  Fold {fold}: resuming from the checkpoint of an interrupted run")
    history, best_epoch, best = trainer.train_fold(
        model, x_train, ctx.dataset.target_index(train), x_val, ctx.dataset.target_index(validation),
        n_classes, learner, fold_seed(general["seed"], fold), log_dir, checkpoint_path=checkpoint,
        strategy=strategy, train_copies=copies, teacher=distillation_teacher(ctx, fold, train, validation),
        normalizer=normalizer)
    model_files.save_model_atomic(model_files.as_float32(fused_batch_norm.plain(model)), model_path)
    keras.mixed_precision.set_global_policy("float32")  # the precision is the training's, not the later stages'
    trainer.Checkpoint(checkpoint).remove()
    plots.training_curves_png(history, ctx.path("learner", f"training_curves_fold_{fold}.png"),
                              f"{ctx.params['set_id']}, fold {fold}")
    kept = f"epoch {best_epoch} ({learner['monitor']['metric']} {best:.3f})" if best_epoch else "last epoch"
    runs = f" (over every run: {tables.describe_training_time(*training_time(ctx, fold))})" if resumed else ""
    print(f"  Fold {fold}: trained in {time.monotonic() - started:.0f} s{runs}, kept {kept}")


def training_time(ctx, fold):
    """(seconds, timed epochs, epochs) of fold `fold`'s training: the wall-clock time of its epochs (an
    ensemble's members' summed), from the learners' history CSVs, so a training resumed over several runs is
    counted whole and the pauses between the runs are not. A teacher's training is its own set's."""
    from .training.trainer import training_seconds
    times = [training_seconds(os.path.join(member.paths["learner"], f"logs_fold_{fold}", "history.csv"))
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
    from .models import model_files
    from .training import distillation
    if ctx.params["learner"]["distillation"]["consistent"]:
        members = ctx.teacher.sets()
        print(f"  Fold {fold}: the teacher ({len(members)} model{'s' if len(members) > 1 else ''}) predicts every "
              "training batch as the student sees it", flush=True)
        return distillation.LiveTeacher([t.model_path(fold) for t in members], [t.normalizer(fold) for t in members],
                                        ctx.normalizer(fold))
    pool = ctx.dataset.train(fold)  # every training-fold clip: the validation split does not change them
    names = [c.filename for c in pool]

    def predict():
        copies = ctx.augmented_features(pool)
        print(f"  Fold {fold}: the teacher predicts {len(pool)} training clips"
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


def _print_complexity(model):
    from .models.complexity import keras_size_report
    total = keras_size_report(model)["total"]
    print(f"  Model {model.name}: {total['params']:,} parameters, {total['macs'] / 1e6:.2f} M MACs per clip")


def predictions_cached(ctx, out, fold, *inputs):
    """True when a fold's prediction file can be reused: not --overwrite, newer than its inputs, and intact."""
    return not ctx.overwrite and not stale(out, *inputs) and results_io.probabilities_intact(
        out, ctx.dataset.labels, [c.filename for c in ctx.dataset.test(fold)])


def need(path, stage):
    if not os.path.exists(path):
        raise UserError(f"{path} does not exist yet; enable flow.{stage} and run again.")
    return path


def do_testing(ctx):
    section("Testing")
    from . import runtime  # noqa: F401  (quiet TensorFlow start-up)
    from .models import model_files
    for fold in ctx.folds:
        model_path = need(ctx.model_path(fold), "learning")
        out = ctx.path("recognizer", f"res_fold_{fold}.csv")
        if predictions_cached(ctx, out, fold, model_path):
            print(f"  Fold {fold}: predictions cached")
            continue
        model = model_files.load_model(model_path)
        normalizer = ctx.normalizer(fold)
        test = ctx.dataset.test(fold)
        probabilities = test_time.averaged(lambda x: model_files.predict(model, x), normalizer(ctx.features(test)),
                                           ctx.params["testing"]["time_shifts"])
        write_fold_predictions(ctx, out, test, probabilities)
        print(f"  Fold {fold}: {len(test)} clips -> {out}")


def write_fold_predictions(ctx, path, clips, probabilities):
    labels = ctx.dataset.labels
    truth = [labels[i] for i in ctx.dataset.target_index(clips)]
    results_io.write_probabilities(path, [c.filename for c in clips], truth, probabilities, labels)


def load_predictions(ctx, results_dir, name_pattern="res_fold_{fold}.csv"):
    """{fold: (true class indices, probabilities)} from the probability CSVs of the active folds."""
    labels = ctx.dataset.labels
    per_fold = {}
    for fold in ctx.folds:
        path = need(os.path.join(results_dir, name_pattern.format(fold=fold)), "testing")
        _names, truth, probabilities = _cached(results_io.read_probabilities, path, labels,
                                              [c.filename for c in ctx.dataset.test(fold)])
        index = {label: i for i, label in enumerate(labels)}
        per_fold[fold] = (np.array([index[t] for t in truth], dtype=np.int64), probabilities)
    return per_fold


def do_evaluation(ctx, results_dir=None, predictions_dir=None, name_pattern="res_fold_{fold}.csv", title=None):
    section(title or "Evaluation")
    per_fold = load_predictions(ctx, predictions_dir or ctx.paths["recognizer"], name_pattern)
    result = metrics.evaluate(per_fold, ctx.dataset.labels, clip=ctx.params["evaluation"]["logloss_clip"])
    out_dir = results_dir or ctx.paths["results"]
    parts = [tables.class_table(result)]
    if ctx.dataset.has_esc10_column:  # the major categories are ESC-50's; other datasets have no such grouping
        parts.append(tables.format_table(result, metrics.category_rows(ctx.dataset.targets), "Category"))
    parts.append(tables.prf_table(result))
    cv = metrics.cross_validation(result)
    if cv["folds"] > 1:
        parts.append(f"   Cross-validation summary\n\n{tables.cross_validation_table(cv)}")
    training = {fold: training_time(ctx, fold) for fold in ctx.folds} if predictions_dir is None else {}
    training = {fold: t for fold, t in training.items() if t[1]}  # (none for folds trained before epochs were timed)
    if training:
        parts.append(tables.training_time_table(training))
    text = "\n\n".join(parts)
    print(text)
    results_io.atomic_write_text(os.path.join(out_dir, "tables.txt"), text + "\n")
    save_result_files(ctx, result, cv, out_dir, training)
    summary = (f"{cv['folds']}-fold cross-validation: accuracy {tables.percent(cv['accuracy_mean'])} +- "
               f"{tables.percent(cv['accuracy_std'])} % (mean +- std over folds), log loss {cv['logloss_mean']:.3f}"
               if cv["folds"] > 1 else
               f"One fold ({ctx.folds[0]}), not a cross-validation result: accuracy "
               f"{tables.percent(result['overall_accuracy'])} %, log loss {result['overall_logloss']:.3f}")
    print(f"\n  {summary}; results in {out_dir}")
    return result


def save_result_files(ctx, result, cv, out_dir, training=None):
    labels = result["labels"]
    results_io.write_csv(os.path.join(out_dir, "confusion_matrix.csv"), ["true \\ predicted"] + labels,
                         [[label] + list(map(int, row)) for label, row in zip(labels, result["confusion"])])
    results_io.write_csv(os.path.join(out_dir, "class_metrics.csv"),
                         ["class", "accuracy", "precision", "recall", "f1", "logloss"],
                         [[label, f"{result['class_accuracy'][i]:.4f}", f"{result['precision'][i]:.4f}",
                           f"{result['recall'][i]:.4f}", f"{result['f1'][i]:.4f}",
                           f"{metrics.row_numbers(result, [i])['logloss']:.4f}"] for i, label in enumerate(labels)])
    plots.confusion_matrix_png(result["confusion"], labels, os.path.join(out_dir, "confusion_matrix.png"),
                               f"{ctx.params['set_id']}: confusion matrix, fold(s) {', '.join(map(str, ctx.folds))}")
    for fold, (true, probabilities) in result["per_fold"].items():
        plots.confusion_matrix_png(metrics.confusion_matrix(true, probabilities.argmax(axis=1), len(labels)), labels,
                                   os.path.join(out_dir, f"confusion_matrix_fold_{fold}.png"),
                                   f"{ctx.params['set_id']}: confusion matrix, fold {fold}")
    plots.class_accuracy_png(np.nan_to_num(result["class_accuracy"]), labels,
                             os.path.join(out_dir, "class_accuracy.png"), f"{ctx.params['set_id']}: class accuracy")
    if cv["folds"] > 1:
        plots.cross_validation_png(cv, os.path.join(out_dir, "cross_validation.png"),
                                   f"{ctx.params['set_id']}: {cv['folds']}-fold cross-validation")
    results_io.write_yaml(os.path.join(out_dir, "results.yaml"), {
        "set_id": ctx.params["set_id"],
        "description": ctx.params["description"],
        "parameter_hash": config.params_hash(ctx.params),
        "dataset": os.path.abspath(ctx.dataset.root),
        "folds": list(ctx.folds),
        "evaluated_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "overall": {"accuracy": float(result["overall_accuracy"]), "logloss": float(result["overall_logloss"])},
        "folds_results": {f: {"accuracy": float(result["fold_accuracy"][f]),
                                   "logloss": float(result["fold_logloss"][f])} for f in ctx.folds},
        "cross_validation": {"folds": cv["folds"], "accuracy_mean": cv["accuracy_mean"],
                             "accuracy_std": cv["accuracy_std"], "logloss_mean": cv["logloss_mean"],
                             "logloss_std": cv["logloss_std"], "pooled_accuracy": cv["pooled_accuracy"]},
        "training_seconds": {f: {"seconds": round(t[0], 1), "timed_epochs": t[1], "epochs": t[2]}
                             for f, t in (training or {}).items()},
        "class_wise": {label: {"accuracy": float(result["class_accuracy"][i]),
                               "logloss": float(metrics.row_numbers(result, [i])["logloss"])}
                       for i, label in enumerate(labels)},
        "parameters": _own_parameters(ctx.params) if not ctx.members else
                      {"ensemble": {m.params["set_id"]: _own_parameters(m.params) for m in ctx.members}},
    })


def _own_parameters(params):
    return {k: v for k, v in params.items() if k not in ("set_id", "description")}


def do_model_size_calculation(ctx):
    section("Model size")
    from .models.complexity import format_size_report, keras_file_report
    for i, fold in enumerate(ctx.folds):
        size = keras_file_report(need(ctx.model_path(fold), "learning"))
        if i == 0:  # every fold has the same architecture: the full table once, then one line per fold
            print(f"  Fold {fold}")
            print(format_size_report(size))
        else:
            t = size["total"]
            print(f"  Fold {fold}: {t['params']:,} parameters, {t['nonzero']:,} non-zero, {t['bytes']:,} bytes")
