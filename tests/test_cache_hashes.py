"""Every cache folder of every set in task_esc50.yaml, pinned: a change to the code that names them (or to how
parameters are resolved and hashed) must not rename a cache, or every trained model, feature and result of a
user's runs would be computed again. The pinned names are in data/cache_hashes.json; a set added to the YAML
is added there (run this file as a script to print the current names)."""
import json
import os
import sys
from types import SimpleNamespace

from conftest import ROOT

from esc50_baseline import config
from esc50_baseline.run import setup

PINNED = os.path.join(ROOT, "tests", "data", "cache_hashes.json")
APPLICATION = "/cache/system"
DATASET = SimpleNamespace(root="/data/ESC-50", folds=[1, 2, 3, 4, 5])


def folders():
    """{set id: {every folder key of the set, its members' and its teacher's: the folder, under the cache}}."""
    parameters = config.Parameters(os.path.join(ROOT, "task_esc50.yaml"))
    overrides = [f"path.application={APPLICATION}"]
    flags = SimpleNamespace(overwrite=False)
    out = {}
    for set_id in parameters.sets:
        params = parameters.resolve(set_id, overrides)
        ctx = setup.run_context(parameters, params, overrides, flags, DATASET, [1, 2, 3, 4, 5])
        named = {}
        for i, c in enumerate(ctx.every_set()):
            prefix = "" if i == 0 else f"{c.params['set_id']}:"
            named.update({prefix + key: os.path.relpath(path, APPLICATION) for key, path in sorted(c.paths.items())})
        out[set_id] = named
    return out


def test_every_cache_folder_of_every_set_keeps_its_name():
    with open(PINNED, encoding="utf-8") as f:
        pinned = json.load(f)
    now = folders()
    assert sorted(now) == sorted(pinned), "a set was added or removed: update data/cache_hashes.json"
    for set_id in pinned:
        assert now[set_id] == pinned[set_id], set_id


if __name__ == "__main__":
    json.dump(folders(), sys.stdout, indent=1, sort_keys=True)
