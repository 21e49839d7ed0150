"""Application helpers shared by task_esc50.py and task_esc50_tflite.py: command-line flags, parameters,
the run's dataset/folds/folders, the --show_* listings, and turning user mistakes into one clear sentence.

Imports stay light here (no TensorFlow, no librosa) so that --help and --show_sets answer at once.
"""
import collections
import glob
import os
import re
import signal
import sys

from absl import app, flags

from esc50_baseline import config, interrupts
from esc50_baseline.errors import UserError

HERE = os.path.dirname(os.path.abspath(__file__))


def define_flags():
    flags.DEFINE_string("set", None, "Parameter set to run (default: active_set in the YAML).")
    flags.DEFINE_list("folds", None, "Active folds as the csv names them, e.g. 1,3 (default: general.active_folds).")
    flags.DEFINE_string("dataset_path", None, "An existing ESC-50-layout folder (audio/ + meta/esc50.csv).")
    flags.DEFINE_boolean("overwrite", False, "Recompute every stage, ignoring cached results.")
    flags.DEFINE_boolean("show_sets", False, "List the parameter sets and exit.")
    flags.DEFINE_boolean("show_results", False, "List every evaluated set with its accuracy and log loss, and "
                         "the settings it was run with where they differ from the YAML.")
    flags.DEFINE_list("compare", None, "Compare two trained sets on the test clips they share, fold by fold, with "
                      "McNemar's exact test: OTHER (against --set) or A,B; a side SET:FORMAT is a TFLite format "
                      "of the set (e.g. low_complexity:int8).")
    flags.DEFINE_multi_string("param", [], "Override a YAML setting: key.path=value (repeatable).")
    flags.DEFINE_string("params_file", os.path.join(HERE, "task_esc50.yaml"), "The parameter file.")
    flags.DEFINE_string("predict", None, "Classify an audio file, or every audio file in a folder, with the "
                        "trained set (its fold models averaged), then exit.")
    flags.DEFINE_boolean("json", False, "With --predict: print JSON instead of a table.")
    flags.DEFINE_integer("top_k", 3, "With --predict: how many labels to show per file.", lower_bound=1)
    flags.DEFINE_boolean("windows", False, "With --predict: also show the scores of every 5 s window.")
    flags.DEFINE_string("detect", None, "Detect sound events in an audio file of any length, or in every audio file "
                        "in a folder, with the trained set; write their events and score curves, then exit.")
    flags.DEFINE_string("detect_output", "detections", "With --detect: the folder for detections.tsv and the figures.")
    flags.DEFINE_enum("predict_format", "keras", ["keras", *config.TFLITE_FORMATS],
                      "With --predict: the Keras models, or the TFLite models of this format (raw_*: the "
                      "models that take samples and compute the features themselves).")
    return flags.FLAGS


def run(main):
    """absl's app.run, with a UserError or a mistyped flag printed as one line (exit 2) instead of a stack
    trace, and SIGTERM handled like Ctrl-C: the run stops between two steps, and what it finished is kept."""
    def guarded(argv):
        interrupts.install()
        try:
            result = main(argv)
            interrupts.check()  # a signal that a finalizer swallowed still ends the run as interrupted
            return result
        except UserError as e:
            print(f"Error: {e}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt as e:
            print("\nInterrupted; finished work is cached, so the same command continues from there.",
                  file=sys.stderr)
            interrupted_exit(128 + (e.args[0] if e.args else signal.SIGINT))
    app.run(guarded, flags_parser=parse_flags)


def interrupted_exit(status):
    """Exit at once, without the interpreter's teardown: everything finished is on disk already (each
    file is written whole, then renamed), and TensorFlow's teardown of an interrupted training waits for
    its input pipeline's batches in flight, which took 12-44 s on a busy core."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def parse_flags(argv):
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        print(f"Error: {e}; run with --help to see the flags.", file=sys.stderr)
        sys.exit(2)


def start(FLAGS):
    """Parameters and the run context, or None when a --show_* or --predict flag has already answered."""
    parameters, params = load_parameters(FLAGS)
    if FLAGS.show_sets:
        return show_sets(parameters)
    if FLAGS.show_results:
        return show_results(params, parameters)
    if FLAGS.compare:
        return compare(parameters, params, FLAGS)
    if FLAGS.predict:
        return predict(parameters, params, FLAGS)
    if FLAGS.detect:
        return detect(parameters, params, FLAGS)
    ctx = prepare_run(parameters, params, FLAGS)
    from esc50_baseline import fold_processes
    fold_processes.run(ctx)  # general.fold_processes > 1: the folds trained side by side, then all found cached
    return ctx


def predict(parameters, params, FLAGS):
    from esc50_baseline import predict as prediction
    paths = prediction.find_audio(FLAGS.predict)
    # the dataset's csv gives the labels and, with the parameters, the folders of the trained models
    ctx = prepare_run(parameters, params, FLAGS, quiet=FLAGS.json, check_audio=False, download=False)
    result = prediction.predict_files(ctx, paths, FLAGS.predict_format, FLAGS.windows)
    print(prediction.as_json(result, FLAGS.top_k) if FLAGS.json else prediction.as_table(result, FLAGS.top_k))
    if all("error" in entry for entry in result["files"]):
        raise UserError(f"None of the {len(paths)} file(s) given to --predict could be read.")


def compare(parameters, params, FLAGS):
    """--compare: two trained sets' (or TFLite formats') test predictions, clip by clip, on their common folds."""
    import dataclasses
    from esc50_baseline.evaluation.comparison import class_differences, comparison_table, paired_folds
    from esc50_baseline.stages import load_predictions
    specs = FLAGS.compare if len(FLAGS.compare) != 1 else [params["set_id"]] + FLAGS.compare
    if len(specs) != 2:
        raise UserError(f"--compare takes one set (compared with --set) or two (A,B), each SET or SET:FORMAT; "
                        f"it got {len(specs)}: {','.join(specs)}.")
    sides = [_comparison_side(parameters, spec, FLAGS) for spec in specs]
    folds = [f for f in sides[0][1].folds if f in sides[1][1].folds]
    if not folds:
        raise UserError(f"{specs[0]} and {specs[1]} share no active fold; choose folds both ran with --folds.")
    predictions = []
    for spec, ctx, folder, pattern, script in sides:
        for fold in folds:
            path = os.path.join(folder, pattern.format(fold=fold))
            if not os.path.exists(path):
                raise UserError(f"{spec} has no test predictions for fold {fold} ({path}); run python {script} "
                                f"--set {ctx.params['set_id']} with the same --param and --folds first.")
        predictions.append(load_predictions(dataclasses.replace(ctx, folds=folds), folder, pattern))
    print(f"Comparison on fold(s) {', '.join(map(str, folds))} of {sides[0][1].dataset.root}\n")
    print(comparison_table(specs[0], specs[1], paired_folds(*predictions),
                           class_differences(*predictions, sides[0][1].dataset.labels)))


def _comparison_side(parameters, spec, FLAGS):
    """(spec, its run context, the folder and name pattern of its predictions, the script that writes them)."""
    set_id, _, fmt = spec.partition(":")
    if fmt and fmt not in config.TFLITE_FORMATS:
        raise UserError(f"--compare {spec}: {fmt} is no TFLite format; use one of {', '.join(config.TFLITE_FORMATS)}.")
    ctx = prepare_run(parameters, parameters.resolve(set_id, FLAGS.param), FLAGS, quiet=True, check_audio=False,
                      download=False)
    if fmt:
        return spec, ctx, ctx.paths["tflite"], f"res_fold_{{fold}}_{fmt}.csv", "task_esc50_tflite.py"
    return spec, ctx, ctx.paths["recognizer"], "res_fold_{fold}.csv", "task_esc50.py"


def detect(parameters, params, FLAGS):
    from esc50_baseline import predict as prediction
    from esc50_baseline.detection.detect import detect_files
    paths = prediction.find_audio(FLAGS.detect, flag="--detect")
    ctx = prepare_run(parameters, params, FLAGS, check_audio=False, download=False)
    print(detect_files(ctx, paths, FLAGS.detect_output))


def load_parameters(FLAGS):
    parameters = config.Parameters(FLAGS.params_file)
    return parameters, overwritten(parameters.resolve(FLAGS.set, FLAGS.param), FLAGS)


def overwritten(params, FLAGS):
    if FLAGS.overwrite:
        params["general"]["overwrite"] = True
    return params


def show_sets(parameters):
    print(f"Parameter sets in {parameters.path}:")
    for set_id, entry in parameters.sets.items():
        mark = "*" if set_id == parameters.active_set else " "
        members = f" (ensemble of {', '.join(entry['ensemble'])})" if entry["ensemble"] else ""
        print(f" {mark} {set_id:<16} {entry['description']}{members}")
    print("(* = active_set; run another with --set NAME)")


def show_results(params, parameters=None):
    base = _application_dir(params)
    files = evaluated_runs(os.path.join(base, "evaluator"))
    if not files:
        print(f"No evaluated sets under {base} yet; run python task_esc50.py first.")
        return
    print(f"   {'Set':<16} {'Hash':<11} {'Folds':<14} {'Accuracy':>19} {'Logloss':>8} {'Training':>9}  {'Evaluated':<19}  "
          "Folder")
    print("   " + "-" * 120)
    shown = []
    for path in files:
        result, lines = _read_result(path, lambda r: _set_lines(r, path, parameters),
                                     "run that set again to write it anew")
        if result:
            lines += _tflite_lines(os.path.dirname(path))
            shown.append(result)
        print("\n".join(lines))
    if shown:
        print(f"\n   The same as a figure: {overview_figure(shown, os.path.join(base, 'evaluator'))}")


def evaluated_runs(folder):
    """The results.yaml of every evaluated set under `folder`, and of each --folds run (folds_*/) newer than its
    set's results of all folds: an older one is part of those."""
    files = glob.glob(os.path.join(folder, "*", "results.yaml"))
    for path in glob.glob(os.path.join(folder, "*", "folds_*", "results.yaml")):
        whole = os.path.join(os.path.dirname(os.path.dirname(path)), "results.yaml")
        if not os.path.exists(whole) or os.path.getmtime(path) > os.path.getmtime(whole):
            files.append(path)
    return sorted(files)


def overview_figure(results, folder):
    """results_overview.png in `folder`: every evaluated run's folds, mean and std on one axis (a set run with
    other settings too is told apart by its hash), ESC-50's published results beside them on 50 classes."""
    from esc50_baseline.evaluation.plots import results_overview_png
    path = os.path.join(folder, "results_overview.png")
    results_overview_png(_overview_labels(results), path,
                         esc50=all(len(r.get("class_wise") or {}) == 50 for r in results))
    return path


def _overview_labels(results):
    """(label, result) pairs: the set's name, with its hash where it was run with other settings too, and with
    its folds where a --folds run of the same settings is shown beside the run of all of them."""
    hashes = collections.defaultdict(list)
    for r in results:
        hashes[r["set_id"]].append(r["parameter_hash"])
    labelled = []
    for r in results:
        seen = hashes[r["set_id"]]
        label = f"{r['set_id']} {r['parameter_hash']}" if len(set(seen)) > 1 else r["set_id"]
        if seen.count(r["parameter_hash"]) > 1:
            label += f" (folds {', '.join(str(f) for f in r['folds_results'])})"
        labelled.append((label, r))
    return labelled


def _accuracy(r):
    """A k-fold result as mean +- std over its folds, a one-fold result marked as such."""
    from esc50_baseline.evaluation.tables import percent
    per_fold = [v["accuracy"] for v in r["folds_results"].values()]
    if len(per_fold) > 1:
        import statistics
        return f"{percent(statistics.mean(per_fold))} +- {percent(statistics.stdev(per_fold))} %"
    return f"{percent(r['overall']['accuracy'])} % (one fold)"


def _set_lines(r, path, parameters):
    """An evaluated set's line, and the settings it was run with that differ from `parameters`'s."""
    changed = _settings_changed(r, parameters)
    return [_result_line(r, path)] + ([f"   {'':<16} with {', '.join(changed)}"] if changed else [])


def _tflite_lines(folder):
    """The set's TFLite formats evaluated by task_esc50_tflite.py (tflite_<format>/results.yaml), one line each."""
    lines = []
    for path in sorted(glob.glob(os.path.join(folder, "tflite_*", "results.yaml"))):
        fmt = os.path.basename(os.path.dirname(path))[len("tflite_"):]
        lines += _read_result(path, lambda r: [f"   {'':<16} {'as TFLite ' + fmt:<26} {_accuracy(r):>19} "
                                               f"{r['overall']['logloss']:>8.3f}"],
                              "run task_esc50_tflite.py again to write it anew")[1]
    return lines


def _read_result(path, render, remedy):
    """(the results.yaml at `path`, its lines by `render`), or (None, [a line naming it unreadable and `remedy`])
    when it is damaged or lacks a key `render` reads."""
    from esc50_baseline.errors import DamagedFile
    from esc50_baseline.results_io import read_yaml
    try:
        result = read_yaml(path)
        return result, render(result)
    except (DamagedFile, KeyError, TypeError) as e:
        problem = e.problem if isinstance(e, DamagedFile) else f"it lacks {e}"
        return None, [f"   (unreadable) {path}: {problem}; {remedy}"]


def _result_line(r, path):
    """One evaluated set: its accuracy over its folds, log loss, training time, when and where."""
    folds = f"{len(r['folds'])} ({','.join(map(str, r['folds']))})"
    return (f"   {r['set_id']:<16} {r['parameter_hash']:<11} {folds:<14} {_accuracy(r):>19} "
            f"{r['overall']['logloss']:>8.3f} {_training(r, len(r['folds'])):>9}  {r['evaluated_at']:<19}  "
            f"{os.path.dirname(path)}")


def _training(r, folds):
    """The training time of all its folds, '>' before it when some epochs were not timed, '-' when none were."""
    from esc50_baseline.evaluation.tables import hours_or_minutes
    times = r.get("training_seconds") or {}
    if not times:
        return "-"
    total = sum(t["seconds"] for t in times.values())
    partial = len(times) < folds or any(t["timed_epochs"] < t["epochs"] for t in times.values())
    return (">" if partial else "") + hours_or_minutes(total, minute_digits=1)


def _settings_changed(result, parameters):
    """The settings an evaluated run was made with (those its predictions depend on, as their cache's hash
    counts them) where they differ from its set in today's YAML, as --param overrides, so that two rows of
    one set can be told apart; [] for an unknown set."""
    if parameters is None or result.get("set_id") not in parameters.sets or not isinstance(result.get("parameters"),
                                                                                          dict):
        return []
    saved, today = result["parameters"], parameters.resolve(result["set_id"])
    flat_saved, flat_today = {}, {}
    for section in config.STAGE_SECTIONS["recognizer"]:
        for params, flat in ((saved, flat_saved), (today, flat_today)):
            value = config.get_path(params, section)
            _flatten(config.own_family(value) if section == "learner" else value, section, flat)
    unhashed = {f"{section}.{key}" for section, keys in config.NOT_HASHED.items() for key in keys}
    return [f"{key}={value}" for key, value in flat_saved.items()
            if key not in unhashed and flat_today.get(key, "(absent)") != value]


def _flatten(value, key, into):
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(v, f"{key}.{k}", into)
    else:
        into[key] = value


def _application_dir(params):
    base = params["path"]["application"]
    return base if os.path.isabs(base) else os.path.join(os.getcwd(), base)


def prepare_run(parameters, params, FLAGS, quiet=False, check_audio=True, download=True):
    """Locate (or download) the dataset, check it, pick the folds and name every stage's folder; for an
    ensemble's members and a student's teacher, the same (on the same folds)."""
    from esc50_baseline.data.dataset import Dataset, select_folds
    root = FLAGS.dataset_path or params["path"]["dataset"]
    if not FLAGS.dataset_path and download:
        from esc50_baseline.data.download import ensure_dataset
        ensure_dataset(root, params["path"]["dataset_url"])
    elif not os.path.isdir(root):
        raise UserError(f"--dataset_path {root} does not exist; give the folder that holds audio/ and meta/esc50.csv.")
    dataset = Dataset(root, params["dataset"]["subset"], params["dataset"]["meta_file"], params["dataset"]["audio_folder"])
    missing = dataset.missing_audio() if check_audio else []
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise UserError(f"{len(missing)} audio file(s) listed in {dataset.meta_path} are missing from "
                        f"{dataset.audio_folder}: {shown}; restore them or remove their rows.")
    active = select_folds(dataset.folds, params["general"]["active_folds"])
    folds = select_folds(dataset.folds, FLAGS.folds) if FLAGS.folds is not None else active
    ctx = run_context(parameters, params, FLAGS.param, FLAGS, dataset, folds, fold_subset(folds, active))
    from esc50_baseline.atomic import remove_stale_temporaries
    for folder in {_application_dir(c.params) for c in ctx.every_set()}:
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
          f"folds {', '.join(map(str, dataset.folds))}; active fold(s): {', '.join(map(str, folds))}")
    return ctx


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


def run_context(parameters, params, overrides, FLAGS, dataset, folds, subset=None):
    """The RunContext of a set, with those of its ensemble members and its teacher. Members and teachers
    read the dataset as the set does (the parameter checks make sure), so they share it; `subset`: see
    fold_subset."""
    from esc50_baseline import stages
    from esc50_baseline.models.builder import check_model
    from esc50_baseline.training import fine_tuning
    overwritten(params, FLAGS)
    check_validation_folds(params["learner"]["validation_folds"], dataset, folds)  # each member's and teacher's too
    check_model(params["learner"])
    fine_tuning.check(params["learner"])
    members = [run_context(parameters, m, overrides, FLAGS, dataset, folds, subset)
               for m in parameters.members(params["set_id"], overrides)]
    teacher_params, teacher_overrides = parameters.teacher(params, overrides) if not members else (None, ())
    teacher = teacher_params and run_context(parameters, teacher_params, teacher_overrides, FLAGS, dataset, folds,
                                             subset)
    paths = ensemble_paths(params, members) if members else stage_paths(params, dataset, teacher)
    if subset:
        paths["results"] = os.path.join(paths["results"], subset)
    return stages.RunContext(params=params, dataset=dataset, folds=folds, paths=paths,
                             overwrite=params["general"]["overwrite"], members=members, teacher=teacher)


def stage_paths(params, dataset, teacher=None):
    base = _application_dir(params)
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


def ensemble_paths(params, members):
    """An ensemble's own folders: named by its members' prediction folders, so retraining a member renames them."""
    base = _application_dir(params)
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
