"""--show_results: every evaluated run under path.application, with its accuracy, log loss and training time, the
settings it was run with where they differ from the YAML, its TFLite formats, and a figure of them all."""
import collections
import glob
import os

from .. import config
from ..evaluation import record
from ..run.setup import application_dir


def show_results(params, parameters=None, only_set=None, overrides=()):
    """Every evaluated set, one run a set: the run of its settings in today's YAML (with these --param
    `overrides`), else its newest; with `only_set`, every run of that set."""
    base = application_dir(params, parameters)
    files = evaluated_runs(os.path.join(base, "evaluator"))
    if not files:
        print(f"No evaluated sets under {base} yet; run python task_esc50.py first.")
        return
    print(f"   {'Set':<16} {'Hash':<11} {'Folds':<14} {'Accuracy':>19} {'Logloss':>8} {'Training':>9}  {'Evaluated':<19}  "
          "Folder")
    print("   " + "-" * 120)
    shown, runs = [], collections.defaultdict(list)
    for path in files:
        result, lines = _read_result(path, lambda r: _set_lines(r, path, parameters),
                                     "run that set again to write it anew")
        if result is None:
            print("\n".join(lines))
        elif only_set in (None, result.get("set_id")):
            runs[result.get("set_id")].append((path, result, lines))
    for set_id, found in runs.items():
        chosen = found if only_set else [_chosen(found, parameters, overrides)]
        for path, result, lines in chosen:
            print("\n".join(lines + _tflite_lines(os.path.dirname(path))))
            shown.append(result)
        if len(found) > len(chosen):
            print(f"   {'':<16} and {len(found) - 1} other run(s) of {set_id} (other settings or folds): "
                  f"--show_results --set {set_id}")
    if shown:
        try:
            print(f"\n   The same as a figure: {overview_figure(shown, os.path.join(base, 'evaluator'))}")
        except OSError as e:  # a listing of a folder one may read but not write (another user's runs)
            print(f"\n   (No figure: {os.path.join(base, 'evaluator')} cannot be written: {e.strerror}.)")


def _chosen(found, parameters, overrides):
    """Of one set's runs [(path, record, lines)], the newest of today's settings, else the newest."""
    newest = lambda runs: max(runs, key=lambda run: str(run[1].get("evaluated_at", "")))
    set_id = found[0][1].get("set_id")
    if parameters is not None and set_id in parameters.sets:
        today = config.params_hash(parameters.resolve(set_id, overrides))
        current = [run for run in found if run[1].get("parameter_hash") == today]
        if current:
            return newest(current)
    return newest(found)


def evaluated_runs(folder):
    """The results.yaml of every evaluated set under `folder`, and of each --folds run (folds_*/) newer than its
    set's results of all folds: an older one is part of those."""
    files = glob.glob(os.path.join(folder, "*", record.RESULTS_FILE))
    for path in glob.glob(os.path.join(folder, "*", "folds_*", record.RESULTS_FILE)):
        whole = os.path.join(os.path.dirname(os.path.dirname(path)), record.RESULTS_FILE)
        if not os.path.exists(whole) or os.path.getmtime(path) > os.path.getmtime(whole):
            files.append(path)
    return sorted(files)


def overview_figure(results, folder):
    """results_overview.png in `folder`: every evaluated run's folds, mean and std on one axis (a set run with
    other settings too is told apart by its hash), ESC-50's published results beside them on 50 classes."""
    from ..evaluation.plots import results_overview_png
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


def _set_lines(r, path, parameters):
    """An evaluated set's line, and the settings it was run with that differ from `parameters`'s."""
    changed = _settings_changed(r, parameters)
    return [_result_line(r, path)] + ([f"   {'':<16} with {', '.join(changed)}"] if changed else [])


def _tflite_lines(folder):
    """The set's TFLite formats evaluated by task_esc50_tflite.py (tflite_<format>/results.yaml), one line each."""
    lines = []
    for path in sorted(glob.glob(os.path.join(folder, "tflite_*", record.RESULTS_FILE))):
        fmt = os.path.basename(os.path.dirname(path))[len("tflite_"):]
        lines += _read_result(path, lambda r: [f"   {'':<16} {'as TFLite ' + fmt:<26} {record.accuracy_text(r):>19} "
                                               f"{record.overall(r)['logloss']:>8.3f}"],
                              "run task_esc50_tflite.py again to write it anew")[1]
    return lines


def _read_result(path, render, remedy):
    """(the results.yaml at `path`, its lines by `render`), or (None, [a line naming it unreadable and `remedy`])
    when it is damaged or lacks a key `render` reads."""
    from ..errors import DamagedFile
    try:
        result = record.read(path)
        return result, render(result)
    except (DamagedFile, KeyError, TypeError) as e:
        problem = e.problem if isinstance(e, DamagedFile) else f"it lacks {e}"
        return None, [f"   (unreadable) {path}: {problem}; {remedy}"]


def _result_line(r, path):
    """One evaluated set: its accuracy over its folds, log loss, training time, when and where."""
    folds = f"{len(r['folds'])} ({','.join(map(str, r['folds']))})"
    return (f"   {r['set_id']:<16} {folder_hash(path, r['set_id']):<11} {folds:<14} {record.accuracy_text(r):>19} "
            f"{record.overall(r)['logloss']:>8.3f} {record.training_text(r):>9}  {r['evaluated_at']:<19}  "
            f"{os.path.dirname(path)}")


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


def folder_hash(path, set_id):
    """The hash in the name of a result's folder (evaluator/SET_HASH[/folds_*]/results.yaml): that of the
    predictions it scores, the one a person finds on disk."""
    folder = os.path.dirname(path)
    if os.path.basename(folder).startswith("folds_"):
        folder = os.path.dirname(folder)
    name = os.path.basename(folder)
    return name[len(set_id) + 1:] if name.startswith(set_id + "_") else name
