"""--show_sets: the parameter sets of the YAML, the active one marked, each with its cross-validation accuracy where
a run of its settings (with the same --param) has been evaluated on more than one fold."""
import glob
import os

from .. import config
from ..errors import DamagedFile
from ..evaluation import record


def show_sets(parameters, overrides=()):
    from ..run.setup import application_dir
    base = application_dir(parameters.resolve(None, overrides), parameters)
    width = max(len(set_id) for set_id in parameters.sets)
    accuracies = {set_id: cross_validated(base, set_id, config.params_hash(parameters.resolve(set_id, overrides)))
                  for set_id in parameters.sets}
    column = max((len(a) for a in accuracies.values() if a), default=0)
    print(f"Parameter sets in {parameters.path}:")
    for set_id, entry in parameters.sets.items():
        mark = "*" if set_id == parameters.active_set else " "
        members = f" (ensemble of {', '.join(entry['ensemble'])})" if entry["ensemble"] else ""
        accuracy = f"{accuracies[set_id] or '':<{column}}  " if column else ""
        print(f" {mark} {set_id:<{width}}  {accuracy}{entry['description']}{members}")
    print("(* = active_set; run another with --set NAME" + (
        f"; accuracy: mean +- std over the folds (their number) of its evaluated run under {base})" if column else ")"))


def cross_validated(base, set_id, parameter_hash):
    """'82.8 +- 3.5 % (5)': the newest evaluation of the set's settings on more than one fold, or None."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(base), "evaluator", f"{glob.escape(set_id)}_*", record.RESULTS_FILE)):
        try:
            r = record.read(path)
        except DamagedFile:
            continue
        if r.get("set_id") == set_id and r.get("parameter_hash") == parameter_hash and len(r.get("folds", [])) > 1:
            found.append((r.get("evaluated_at", ""), r))
    if not found:
        return None
    r = max(found, key=lambda item: item[0])[1]
    return f"{record.accuracy_text(r)} ({len(r['folds'])})"
