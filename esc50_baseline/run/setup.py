"""Setting up a run: the parameters with the flags laid over them, the dataset located and checked, the folds
picked, and every set's cache folders named by the hash of the parameters each stage depends on (so a second run
recomputes only what a changed parameter affects).

`options` is the parsed command line (the task scripts' flags): params_file, set, param, overwrite, dataset_path and
folds."""
import os
import re

from .. import config
from ..config.parameters import SHIPPED
from ..errors import UserError
from .context import RunContext


def load_parameters(options):
    import sys
    parameters = config.Parameters(options.params_file)
    if parameters.filled:
        shown = ", ".join(parameters.filled[:4]) + (", ..." if len(parameters.filled) > 4 else "")
        print(f"Note: {options.params_file} lacks {len(parameters.filled)} setting(s) added since it was written "
              f"({shown}); they take the shipped task_esc50.yaml's values.", file=sys.stderr)
    return parameters, overwritten(parameters.resolve(options.set, options.param), options)


def overwritten(params, options):
    if options.overwrite:
        params["general"]["overwrite"] = True
    return params


def prepare_run(parameters, params, options, quiet=False, check_audio=True, download=True):
    """Locate (or download) the dataset, check it, pick the folds and name every stage's folder; for an
    ensemble's members and a student's teacher, the same (on the same folds)."""
    from ..data.dataset import FINAL, Dataset, select_folds
    root = options.dataset_path or in_parameter_folder(params["path"]["dataset"], parameters)
    if not options.dataset_path and download:
        from ..data.download import ensure_dataset
        ensure_dataset(root, params["path"]["dataset_url"], sha256=params["path"]["dataset_sha256"])
    elif not os.path.isdir(root):
        where = "--dataset_path" if options.dataset_path else f"path.dataset of {parameters.path}"
        what = "is a file, not a folder" if os.path.exists(root) else "does not exist"
        raise UserError(f"{where} names {os.path.abspath(root)}, which {what}; give the folder that holds "
                        f"{params['dataset']['audio_folder']}/ and {params['dataset']['meta_file']}.")
    d = params["dataset"]
    dataset = Dataset(root, d["subset"], d["meta_file"], d["audio_folder"], d["columns"], d["file_pattern"])
    missing = dataset.missing_audio() if check_audio else []
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise UserError(f"{len(missing)} audio file(s) listed in {dataset.meta_path} are missing from "
                        f"{dataset.audio_folder}: {shown}; restore them or remove their rows.")
    active = select_folds(dataset.folds, params["general"]["active_folds"])
    folds = select_folds(dataset.folds, options.folds) if options.folds is not None else active
    if getattr(options, "final", False):
        if options.folds is not None:
            raise UserError("--final trains on every fold and tests none; leave out --folds.")
        folds = [FINAL]
    ctx = run_context(parameters, params, options.param, options, dataset, folds, fold_subset(folds, active))
    ctx.same_settings = same_settings(options)
    for c in ctx.every_set():
        check_training_clips(dataset, folds, c.params["learner"]["validation_folds"])
    from ..atomic import remove_stale_temporaries
    for folder in {application_dir(c.params, parameters) for c in ctx.every_set()}:
        _check_writable(folder)
        remove_stale_temporaries(folder)  # left by runs that were killed mid-write
    if quiet:
        return ctx
    print(f"Set {params['set_id']}: {params['description']}")
    if ctx.members:
        print(f"Ensemble of {len(ctx.members)} sets, their predictions averaged: {', '.join(params['ensemble'])}")
    if ctx.teacher:
        print(f"Learns from the teacher set {ctx.teacher.params['set_id']} (trained first, or read from the cache)")
    print(f"Dataset {os.path.abspath(root)}: {len(dataset.clips)} clips, {len(dataset.labels)} classes, "
          f"folds {', '.join(map(str, dataset.folds))}; "
          + ("the final model trains on every clip" if folds == [FINAL] else
             f"active fold(s): {', '.join(map(str, folds))}"))
    return ctx


def same_settings(options):
    """' --dataset_path DIR --param K=V ...': the flags of this command that a hint's command must repeat."""
    import shlex
    words = ([] if options.dataset_path is None else ["--dataset_path", options.dataset_path])
    words += [w for value in options.param for w in ("--param", value)]
    if getattr(options, "params_file", None) and os.path.abspath(options.params_file) != SHIPPED:
        words += ["--params_file", options.params_file]
    return "".join(" " + shlex.quote(w) for w in words)


def check_training_clips(dataset, folds, held):
    """Every tested fold leaves clips to train on (the other folds', less those held out for validation)."""
    held = {str(h) for h in held}
    for fold in folds:
        if not [c for c in dataset.train(fold) if str(c.fold) not in held]:
            raise UserError(f"Fold {fold} leaves no clip to train on: {dataset.meta_path} has no other fold"
                            + (" but those held out for validation" if held else "") + "; a dataset needs two or "
                            "more folds (fold K is tested by a network trained on the others).")


def check_validation_folds(held, dataset, folds):
    """Folds held out for validation must be in the dataset, must not be tested in the same run, and must leave
    a fold to train on."""
    labels, held = [str(f) for f in dataset.folds], {str(h) for h in held}
    unknown = sorted(held - set(labels))
    if unknown:
        raise UserError(f"learner.validation_folds names fold {unknown[0]}, which the dataset does not hold (it holds "
                        f"{', '.join(labels)}); name one of those.")
    tested = [str(f) for f in folds if str(f) in held]
    if tested:
        raise UserError(f"Fold {tested[0]} is both tested and held out for validation (learner.validation_folds); "
                        "test the other folds (--folds) or hold out another.")
    if held and len(held) + 1 >= len(labels):
        raise UserError(f"learner.validation_folds holds out {', '.join(sorted(held))}, which leaves no fold to train "
                        "on beside the tested one; hold out fewer folds.")


def fold_subset(folds, active):
    """The results subfolder of a run whose --folds differ from the set's active folds (`folds_1_3`), or None:
    such a run (one of several side by side, or a student's teacher on the student's folds) writes its
    evaluation there, so that it never takes the place of the results of all the set's folds."""
    if folds == active:
        return None
    return "folds_" + "_".join(re.sub(r"[^\w.-]", "-", str(f)) for f in folds)


def run_context(parameters, params, overrides, options, dataset, folds, subset=None):
    """The RunContext of a set, with those of its ensemble members and its teacher. Members and teachers
    read the dataset as the set does (the parameter checks make sure), so they share it; `subset`: see
    fold_subset."""
    from ..models.builder import check_model
    from ..training import fine_tuning
    overwritten(params, options)
    check_validation_folds(params["learner"]["validation_folds"], dataset, folds)  # each member's and teacher's too
    check_model(params["learner"])
    fine_tuning.check(params["learner"])
    members = [run_context(parameters, m, overrides, options, dataset, folds, subset)
               for m in parameters.members(params["set_id"], overrides)]
    teacher_params, teacher_overrides = parameters.teacher(params, overrides) if not members else (None, ())
    teacher = teacher_params and run_context(parameters, teacher_params, teacher_overrides, options, dataset, folds,
                                             subset)
    base = application_dir(params, parameters)
    paths = ensemble_paths(params, members, base) if members else stage_paths(params, dataset, teacher, base)
    if subset:
        paths["results"] = os.path.join(paths["results"], subset)
    return RunContext(params=params, dataset=dataset, folds=folds, paths=paths,
                             overwrite=params["general"]["overwrite"], members=members, teacher=teacher)


def stage_paths(params, dataset, teacher=None, base=None):
    """The folder of every stage of a trained set under `base` (default: its path.application)."""
    base = base or application_dir(params)
    # The dataset's location is part of every hash: two copies never share a cache.
    identity = {"dataset_root": os.path.realpath(dataset.root)}
    feature_params = dict(params, feature_extractor=dict(params["feature_extractor"], **identity))
    h = {stage: config.stage_hash(feature_params, stage) for stage in config.STAGE_SECTIONS}
    teacher_models = " ".join(os.path.basename(t.paths["learner"]) for t in teacher.sets()) if teacher else ""
    for stage in ("learner", "recognizer", "tflite", "sed") if teacher else ():  # a student is as its teacher taught it
        h[stage] = config.text_hash(f"{h[stage]} {teacher_models}")
    paths = {
        "features": os.path.join(base, "features", h["features"]),
        "augmented_features": os.path.join(base, "features_augmented", h["augmented_features"]),
        "normalization": os.path.join(base, "normalization", h["normalization"]),
        "learner": os.path.join(base, "learner", h["learner"]),
        "recognizer": os.path.join(base, "recognizer", h["recognizer"]),
        "tflite": os.path.join(base, "tflite", h["tflite"]),
        "soundscapes": os.path.join(base, "soundscapes", h["soundscapes"]),
        **_set_folders(base, params["set_id"], h["recognizer"], h["sed"]),
    }
    if teacher:  # the teacher's predictions, named by its models and by the clips and copies it predicts
        copies_hash = config.stage_hash(feature_params, "augmented_features", with_counts=True)  # the count too
        names = [teacher_models, os.path.basename(paths["features"]), copies_hash]
        paths["teacher_targets"] = os.path.join(base, "teacher_targets", config.text_hash(" ".join(names)))
    return paths


def ensemble_paths(params, members, base=None):
    """An ensemble's own folders: named by its members' prediction folders, so retraining a member renames them."""
    base = base or application_dir(params)
    h = {stage: config.text_hash(" ".join(os.path.basename(m.paths[stage]) for m in members))
         for stage in ("recognizer", "tflite")}
    detection = config.text_hash(" ".join([os.path.basename(m.paths["learner"]) for m in members]
                                          + [config.stage_hash(params, "sed")]))
    return {"recognizer": os.path.join(base, "recognizer", h["recognizer"]),
            "tflite": os.path.join(base, "tflite", h["tflite"]),
            "soundscapes": _shared_soundscapes(base, members),
            **_set_folders(base, params["set_id"], h["recognizer"], detection)}


def _set_folders(base, set_id, recognizer_hash, detection_hash):
    """A set's evaluation and detection folders: named by the set, so a person finds them, and by the hash of
    the predictions (or detector) they score, so other settings never share them."""
    return {"results": os.path.join(base, "evaluator", f"{set_id}_{recognizer_hash}"),
            "sed": os.path.join(base, "sed", f"{set_id}_{detection_hash}")}


def _shared_soundscapes(base, members):
    """The members' soundscapes folder when they share one (the same clips and validation split); else one
    of the ensemble's own, since its tuning pool (the clips every member held out) is then its own."""
    folders = sorted({m.paths["soundscapes"] for m in members})
    if len(folders) == 1:
        return folders[0]
    return os.path.join(base, "soundscapes", config.text_hash(" ".join(os.path.basename(f) for f in folders)))


def application_dir(params, parameters=None):
    """path.application as an absolute folder: relative to the parameter file's folder (to the working folder
    without one)."""
    return in_parameter_folder(params["path"]["application"], parameters)


def in_parameter_folder(path, parameters=None):
    """A path of the YAML's path section: relative ones are relative to the parameter file's folder, wherever the
    command runs from (to the working folder when no parameter file is at hand)."""
    if os.path.isabs(path):
        return path
    return os.path.join(os.path.dirname(os.path.abspath(parameters.path)) if parameters else os.getcwd(), path)


def _check_writable(folder):
    try:
        os.makedirs(folder, exist_ok=True)
        probe = os.path.join(folder, f".write-test-{os.getpid()}")
        with open(probe, "w") as f:
            f.write("")
        os.remove(probe)
    except OSError as e:
        raise UserError(f"Output folder {folder} is not writable ({e.strerror}); set path.application in the "
                        "YAML (or --param path.application=DIR) to a writable folder.")
