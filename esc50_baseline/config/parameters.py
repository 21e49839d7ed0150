"""The parameter file: read task_esc50.yaml, lay a set over the defaults and the --param overrides over the set,
check every key and value against the schema, and resolve an ensemble's members and a student's teacher."""
import copy
import os

import yaml

from ..errors import UserError
from .schema import check_against_schema, check_ranges, did_you_mean, get_path, is_free, set_path, under_free

_MISSING = object()
SHIPPED = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "task_esc50.yaml")


def load_yaml(path):
    """Parse a YAML file, turning syntax errors into one sentence with the line number."""
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except FileNotFoundError:
        raise UserError(f"Parameter file {path} does not exist; pass --params_file with an existing YAML file.")
    except IsADirectoryError:
        raise UserError(f"Parameter file {path} is a folder; pass --params_file with a YAML file, e.g. "
                        f"{os.path.join(path, 'task_esc50.yaml')}.")
    except UnicodeDecodeError as e:
        raise UserError(f"Parameter file {path} is not UTF-8 text (byte {e.start} is {e.object[e.start]:#04x}); save "
                        "it as UTF-8 and run again.")
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"{path} is not valid YAML{where}: {problem}; fix the syntax there and run again.")


def deep_merge(base, overrides):
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and not is_free(key):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_param_override(text):
    """'learner.epochs=5' -> ('learner.epochs', 5); the value is read as YAML so types come out right."""
    if "=" not in text:
        raise UserError(f"--param {text!r} must look like key.path=value, e.g. --param learner.epochs=5.")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def _students_own(key):
    """An override of the student's own training, which its teacher does not take."""
    return key.startswith("learner.") or key == "general.seed"


class Parameters:
    """The parameter file, with its sets resolved: `resolve(set_id)` gives one set's full parameters."""

    def __init__(self, path):
        self.path = path
        raw = load_yaml(path)
        if not isinstance(raw, dict):
            raise UserError(f"{path} must hold a mapping with active_set, sets and defaults.")
        for key in raw:
            if key not in ("active_set", "sets", "defaults"):
                hint = did_you_mean(key, ["active_set", "sets", "defaults"])
                raise UserError(f"Unknown top-level key '{key}' in {path}{hint}; "
                                "valid keys: active_set, sets, defaults.")
        self.defaults = raw.get("defaults")
        if not isinstance(self.defaults, dict):
            raise UserError(f"{path} has no 'defaults' mapping; it holds the value of every setting.")
        self.filled = self._fill_from_shipped(path)
        self.sets = {}
        for i, entry in enumerate(raw.get("sets") or []):
            if not isinstance(entry, dict) or "set_id" not in entry:
                raise UserError(f"Entry {i + 1} under 'sets' in {path} has no set_id; give each set one.")
            set_id = str(entry["set_id"])
            if set_id in self.sets:
                raise UserError(f"Set id '{set_id}' appears twice under 'sets' in {path}; make each unique.")
            overrides = {k: v for k, v in entry.items() if k not in ("set_id", "description", "ensemble")}
            if "ensemble" in entry and overrides:
                raise UserError(f"Set '{set_id}' of {path} is an ensemble, so it takes only set_id, description and "
                                f"ensemble, not {', '.join(overrides)}; put settings in its member sets.")
            check_against_schema(overrides, self.defaults, f"set '{set_id}' of {path}")
            self.sets[set_id] = {"description": entry.get("description", ""), "overrides": overrides,
                                 "ensemble": entry.get("ensemble")}
        for set_id, entry in self.sets.items():
            if entry["ensemble"] is not None:
                self._check_ensemble(set_id, entry["ensemble"])
        self.active_set = raw.get("active_set") or next(iter(self.sets), None)

    def _fill_from_shipped(self, path):
        """A parameter file of its own (an older copy, say) may lack settings added since: they take the shipped
        task_esc50.yaml's defaults. Returns the dotted keys so filled."""
        if not os.path.exists(SHIPPED) or os.path.abspath(path) == SHIPPED:
            return []
        shipped = load_yaml(SHIPPED)["defaults"]
        check_against_schema(self.defaults, shipped, f"the defaults of {path}")
        missing = []

        def walk(base, mine, prefix):
            for key, value in base.items():
                if key not in mine:
                    missing.append(prefix + key)
                elif isinstance(value, dict) and isinstance(mine[key], dict) and not is_free(prefix + key):
                    walk(value, mine[key], prefix + key + ".")
        walk(shipped, self.defaults, "")
        self.defaults = deep_merge(shipped, self.defaults)
        return missing

    def _check_ensemble(self, set_id, members):
        where = f"Set '{set_id}' of {self.path}"
        if not isinstance(members, list) or len(members) < 2 or not all(isinstance(m, str) for m in members):
            raise UserError(f"{where}: ensemble must list two or more set ids, e.g. ensemble: [vgg7, cnn8_avg].")
        for member in members:
            if member not in self.sets:
                hint = did_you_mean(member, self.sets)
                raise UserError(f"{where}: ensemble member '{member}' is not a defined set{hint}.")
            if self.sets[member]["ensemble"] is not None:
                raise UserError(f"{where}: ensemble member '{member}' is itself an ensemble; list its members instead.")
        if len(set(members)) < len(members):
            raise UserError(f"{where}: ensemble lists a set twice; list each member once.")
        datasets = {m: deep_merge(self.defaults, self.sets[m]["overrides"])["dataset"] for m in members}
        differing = [m for m in members if datasets[m] != datasets[members[0]]]
        if differing:
            raise UserError(f"{where}: member '{differing[0]}' reads the dataset differently from '{members[0]}' "
                            "(its dataset: settings); an ensemble's members must classify the same clips.")

    def teacher(self, params, overrides=()):
        """(the resolved teacher set of a student, the overrides it takes), or (None, ()) without one. The
        student's --param overrides apply to its teacher too (paths, dataset, features, folds), but for those
        of the student's own training (learner.*, general.seed): `learner.epochs=400` for a student must not
        train its cached 200-epoch teacher again for 400 epochs."""
        teacher_id = params["learner"]["distillation"]["teacher"]
        if not teacher_id:
            return None, ()
        where = f"learner.distillation.teacher of set '{params['set_id']}'"
        if teacher_id not in self.sets:
            hint = did_you_mean(teacher_id, self.sets)
            raise UserError(f"{where} is '{teacher_id}', which is not a defined set{hint}.")
        kept = [o for o in overrides if not _students_own(parse_param_override(o)[0])]
        teacher = self.resolve(teacher_id, kept)
        for t in self.members(teacher_id, kept) or [teacher]:
            if t["learner"]["distillation"]["teacher"]:
                raise UserError(f"{where} is '{teacher_id}', which learns from a teacher itself; name a set "
                                "without one.")
            for section in ("feature_extractor", "dataset"):
                if t[section] != params[section]:
                    raise UserError(f"{where} is '{teacher_id}', whose {section} settings differ from the student's; "
                                    "a teacher must read the clips as its student does.")
        return teacher, kept

    def members(self, set_id=None, overrides=()):
        """The resolved parameters of an ensemble's member sets (each with the same --param overrides);
        [] for a set that is not an ensemble."""
        members = self.sets[set_id or self.active_set]["ensemble"] or []
        return [self.resolve(member, overrides) for member in members]

    def resolve(self, set_id=None, overrides=()):
        if set_id is not None and not str(set_id).strip():
            raise UserError(f"--set is empty; name one of the sets of {self.path} (see --show_sets), or leave --set "
                            "out to run its active_set.")
        set_id = set_id or self.active_set
        if set_id not in self.sets:
            hint = did_you_mean(set_id, self.sets)
            raise UserError(f"Set '{set_id}' is not defined in {self.path}{hint}; "
                            f"defined sets: {', '.join(self.sets)} (see --show_sets).")
        params = deep_merge(self.defaults, self.sets[set_id]["overrides"])
        for text in overrides:
            key, value = parse_param_override(text)
            if get_path(self.defaults, key, _MISSING) is _MISSING and not under_free(key):
                parent, _, leaf = key.rpartition(".")
                siblings = get_path(self.defaults, parent) if parent else self.defaults
                options = list(siblings) if isinstance(siblings, dict) else []
                hint = did_you_mean(leaf, options, (parent + ".") if parent else "")
                raise UserError(f"--param {key} names no setting in {self.path}{hint}.")
            nested = {}
            set_path(nested, key, value)
            check_against_schema(nested, self.defaults, f"--param {text}")
            current = get_path(params, key)
            if isinstance(value, dict) and isinstance(current, dict) and not is_free(key):
                value = deep_merge(current, value)  # a section's keys given: the others keep their values
            set_path(params, key, value)
        check_ranges(params, f"set '{set_id}' of {self.path}" + (" with --param overrides" if overrides else ""))
        params["set_id"] = set_id
        params["description"] = self.sets[set_id]["description"]
        params["ensemble"] = list(self.sets[set_id]["ensemble"] or [])
        if params["ensemble"]:  # the clips it classifies are its members'
            params["dataset"] = self.resolve(params["ensemble"][0], overrides)["dataset"]
        return params
