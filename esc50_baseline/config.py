"""Parameters: read task_esc50.yaml, lay a set over the defaults, check every key and type, hash stages.

The `defaults` section is the schema: a set or a --param may only name keys that exist there, with a
value of the same type. Each stage's output folder is named by a hash of exactly the parameters that
stage depends on, so editing one setting invalidates only the stages downstream of it.
"""
import copy
import difflib
import hashlib
import json

import yaml

from .errors import UserError

# Keys whose values are free-form (no schema below them), or whose type may differ from the default's.
FREE_FORM = {"learner.families", "learner.layers", "general.active_folds", "feature_extractor.fmax",
             "learner.fine_tuning.unfreeze", "detection.thresholds"}

CHOICES = {
    "dataset.subset": ["all", "esc10"],
    "dataset.on_bad_audio": ["stop", "skip"],
    "feature_extractor.window": ["hamming_periodic", "hamming_symmetric", "hann_periodic"],
    "feature_extractor.mel_norm": ["slaney", "none"],
    "feature_extractor.spectrogram_type": ["magnitude", "power"],
    "feature_extractor.pad_mode": ["constant", "reflect", "edge"],
    "learner.monitor.metric": ["val_accuracy", "val_loss", "last"],
    "learner.distribution": ["none", "mirrored", "multi_worker"],
    "learner.lr_schedule": ["constant", "cosine"],
    "learner.sampling": ["shuffle", "balanced"],
    "learner.mixed_precision": ["auto", False, "mixed_bfloat16", "mixed_float16"],
    "detection.segmentation": ["spectral", "none"],
    "detection.soundscapes.background": ["stationary", "clip"],
    "learner.augmentation.waveform.vocoder": ["separate", "joint"],
    "learner.augmentation.mixup_kind": ["log_mel", "between_class"],
}

TFLITE_FEATURE_FORMATS = ("float32", "float16", "dynamic_int8", "int8")  # models that take log-mel features
RAW_AUDIO_FORMATS = ("raw_float32", "raw_float16", "raw_int8")  # models that take samples: the front end inside
TFLITE_FORMATS = TFLITE_FEATURE_FORMATS + RAW_AUDIO_FORMATS


def _positive(v):
    return v > 0


def _at_least(low):
    return lambda v: v >= low


def _time_shifts(v):
    return bool(v) and all(isinstance(s, int) and not isinstance(s, bool) for s in v)


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _range(v):
    return isinstance(v, list) and len(v) == 2 and all(map(_number, v)) and v[0] <= v[1]


def _formats(v):
    return bool(v) and all(f in TFLITE_FORMATS for f in v)


# Numeric settings and their allowed ranges: (key, test, what it must be).
RANGES = [
    ("feature_extractor.fs", _positive, "a positive sample rate in Hz, e.g. 44100"),
    ("feature_extractor.clip_seconds", _positive, "a positive number of seconds"),
    ("feature_extractor.win_length_seconds", _positive, "a positive number of seconds"),
    ("feature_extractor.hop_length_seconds", _positive, "a positive number of seconds"),
    ("feature_extractor.n_fft", _positive, "a positive number of samples, e.g. 2048"),
    ("feature_extractor.n_mels", _positive, "at least 1"),
    ("feature_extractor.fmin", _at_least(0), "0 Hz or more"),
    ("learner.epochs", _positive, "at least 1"),
    ("learner.batch_size", _positive, "at least 1"),
    ("learner.learning_rate", _positive, "a positive number, e.g. 0.001"),
    ("learner.warmup_epochs", _at_least(0), "0 or more"),
    ("learner.weight_decay", _at_least(0), "0 or more"),
    ("learner.gradient_clip_norm", _at_least(0), "0 (off) or more"),
    ("learner.ema_momentum", lambda v: 0 <= v < 1, "0 (off) or a momentum below 1, e.g. 0.999"),
    ("learner.label_smoothing", lambda v: 0 <= v < 1, "from 0 up to (not including) 1"),
    ("learner.validation_amount", lambda v: 0 <= v < 1, "from 0 up to (not including) 1"),
    ("learner.validation_folds", lambda v: isinstance(v, list), "a list of fold labels, e.g. [4] (or [] for none)"),
    ("learner.augmentation.time_shift", _at_least(0), "0 (off) or more frames"),
    ("learner.augmentation.freq_masks", _at_least(0), "0 (off) or more"),
    ("learner.augmentation.time_masks", _at_least(0), "0 (off) or more"),
    ("learner.augmentation.mixup_alpha", _at_least(0), "0 (off) or more"),
    ("learner.augmentation.steady_background", lambda v: 0 <= v <= 1, "a chance from 0 (off) to 1"),
    ("learner.augmentation.steady_background_snr_db", _range, "[lowest, highest] in dB, e.g. [10, 30]"),
    ("learner.augmentation.freq_mixstyle", lambda v: 0 <= v <= 1, "a chance from 0 (off) to 1"),
    ("learner.augmentation.freq_mixstyle_alpha", _positive, "above 0, e.g. 0.3"),
    ("learner.augmentation.filter_augment", lambda v: 0 <= v <= 1, "a chance from 0 (off) to 1"),
    ("learner.augmentation.filter_augment_db", _range, "[lowest, highest] gain in dB, e.g. [-6, 6]"),
    ("learner.augmentation.waveform.copies", _at_least(0), "0 (off) or more"),
    ("learner.monitor.initial_delay", _at_least(0), "0 or more epochs"),
    ("learner.fine_tuning.frozen_epochs", _at_least(0), "0 or more epochs"),
    ("learner.fine_tuning.learning_rate", _positive, "a positive number, e.g. 0.0001 (or null: learner.learning_rate)"),
    ("learner.distillation.temperature", _positive, "a positive number, e.g. 2"),
    ("learner.distillation.weight", lambda v: 0 <= v <= 1, "from 0 (labels only) to 1 (teacher only)"),
    ("general.workers", _at_least(0), "0 (one per core) or more"),
    ("general.fold_processes", _at_least(0), "1 (every fold in this process), more, or 0 (one per CPU core)"),
    ("detection.hop_seconds", _positive, "a positive number of seconds, e.g. 0.25"),
    ("detection.activity_db", _positive, "a positive number of dB, e.g. 6"),
    ("detection.thresholds", lambda v: v == "tuned" or (_number(v) and 0 < v < 1), "tuned, or a number between 0 and 1"),
    ("detection.median_filter_seconds", _at_least(0), "0 (off) or more seconds"),
    ("detection.max_gap_seconds", _at_least(0), "0 (off) or more seconds"),
    ("detection.min_event_seconds", _at_least(0), "0 (off) or more seconds"),
    ("detection.soundscapes.per_fold", _positive, "at least 1"),
    ("detection.soundscapes.seconds", lambda v: _range(v) and v[0] > 0, "[shortest, longest] in seconds, e.g. [30, 60]"),
    ("detection.soundscapes.event_snr_db", _range, "[lowest, highest] in dB, e.g. [15, 30]"),
    ("detection.soundscapes.gap_seconds", lambda v: _range(v) and v[0] >= 0, "[shortest, longest] in seconds"),
    ("detection.soundscapes.overlap_share", lambda v: 0 <= v <= 1, "from 0 (no soundscape overlaps) to 1 (all do)"),
    ("detection.soundscapes.active_db", _positive, "a positive number of dB, e.g. 30"),
    ("detection.soundscapes.audible_db", _number, "a number of dB, e.g. 0 (as loud as the background)"),
    ("testing.time_shifts", _time_shifts, "a non-empty list of whole frame counts, e.g. [0]"),
    ("tflite.formats", _formats, f"a non-empty list of {', '.join(TFLITE_FORMATS)}"),
    ("tflite.representative_samples", _positive, "at least 1"),
    ("tflite.num_threads", _positive, "at least 1"),
    ("tflite.latency_clips", _at_least(0), "0 or more"),
]


def check_ranges(params, where):
    """Reject settings of the right type but an unusable value, naming the key and what it must be."""
    def fail(key, value, must):
        raise UserError(f"{key} is {value!r} in {where}; it must be {must} (fix it there, or pass --param {key}=VALUE).")
    for key, ok, must in RANGES:
        value = get_path(params, key)
        if value is not None and not ok(value):
            fail(key, value, must)
    fe = params["feature_extractor"]
    bins = fe["n_fft"] // 2 + 1
    if fe["n_mels"] > bins:
        fail("feature_extractor.n_mels", fe["n_mels"], f"at most {bins} (the FFT's {fe['n_fft']} points give {bins} bins)")
    if int(round(fe["fs"] * fe["win_length_seconds"])) > fe["n_fft"]:
        fail("feature_extractor.win_length_seconds", fe["win_length_seconds"],
             f"at most {fe['n_fft'] / fe['fs']:.4g} s (n_fft samples at fs)")
    if fe["fmax"] is not None and not fe["fmin"] < fe["fmax"] <= fe["fs"] / 2:
        fail("feature_extractor.fmax", fe["fmax"], f"above fmin and at most fs / 2 = {fe['fs'] / 2:g} Hz")
    d = params["detection"]
    hops = d["window_seconds"] / d["hop_seconds"]
    if not (0 < d["window_seconds"] <= fe["clip_seconds"] and abs(hops - round(hops)) < 1e-9):
        fail("detection.window_seconds", d["window_seconds"], f"at most a clip ({fe['clip_seconds']:g} s) and a whole "
             f"number of hops (detection.hop_seconds: {d['hop_seconds']:g})")
    if params["learner"]["ema_momentum"] and params["learner"]["monitor"]["metric"] != "last":
        fail("learner.ema_momentum", params["learner"]["ema_momentum"], "0 unless learner.monitor.metric is last (the "
             "average replaces the final weights, and the validation scores that pick a best epoch are the raw "
             "weights'); set one of them")
    if params["learner"]["ema_refresh_batch_norm"] and not params["learner"]["ema_momentum"]:
        fail("learner.ema_refresh_batch_norm", True, "false while learner.ema_momentum is 0 (there are no averaged "
             "weights to recompute the statistics for); set learner.ema_momentum, e.g. 0.9999")
    if params["learner"]["jit_compile"] and params["general"]["deterministic"]:
        fail("learner.jit_compile", True, "false while general.deterministic is true (XLA has no deterministic "
             "max-pool gradient); set general.deterministic: false to use XLA")


# Which sections each stage's cached output depends on (its own and everything upstream of it).
STAGE_SECTIONS = {
    "features": ["feature_extractor"],
    "augmented_features": ["feature_extractor", "dataset", "learner.augmentation.waveform", "general.seed"],
    "normalization": ["feature_extractor", "dataset", "learner.validation_amount", "learner.validation_folds",
                      "general.seed"],
    "learner": ["feature_extractor", "dataset", "learner", "general.seed", "general.deterministic"],
    "recognizer": ["feature_extractor", "dataset", "learner", "general.seed", "general.deterministic", "testing"],
    "tflite": ["feature_extractor", "dataset", "learner", "general.seed", "general.deterministic",
               "tflite.representative_samples", "tflite.strip_strings", "testing"],
    "soundscapes": ["feature_extractor.fs", "feature_extractor.dataset_root", "dataset", "detection.soundscapes",
                    "general.seed", "learner.validation_amount", "learner.validation_folds"],
    "sed": ["feature_extractor", "dataset", "learner", "general.seed", "general.deterministic", "detection"],
}


def load_yaml(path):
    """Parse a YAML file, turning syntax errors into one sentence with the line number."""
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except FileNotFoundError:
        raise UserError(f"Parameter file {path} does not exist; pass --params_file with an existing YAML file.")
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"{path} is not valid YAML{where}: {problem}; fix the syntax there and run again.")


def get_path(params, dotted, default=None):
    node = params
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def set_path(params, dotted, value):
    keys = dotted.split(".")
    node = params
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def deep_merge(base, overrides):
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and not _is_free(key):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _is_free(path):
    return path in FREE_FORM


def _type_name(value):
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a mapping"}.get(type(value), type(value).__name__)


def _type_ok(default, value):
    if default is None or value is None and default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, type(default))


def check_against_schema(values, schema, where, prefix=""):
    """Reject keys that the defaults don't have (naming the nearest one) and values of the wrong type."""
    for key, value in values.items():
        path = f"{prefix}{key}"
        if key not in schema:
            near = difflib.get_close_matches(str(key), [str(k) for k in schema], n=1)
            hint = f" (did you mean '{prefix}{near[0]}'?)" if near else ""
            raise UserError(f"Unknown key '{path}' in {where}{hint}; valid keys here: "
                            f"{', '.join(map(str, schema))}.")
        default = schema[key]
        if _is_free(path):
            continue
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise UserError(f"Key '{path}' in {where} must be a mapping of settings, not {value!r}.")
            check_against_schema(value, default, where, prefix=path + ".")
        elif path in CHOICES:
            if value not in CHOICES[path]:
                allowed = ", ".join(str(c).lower() if isinstance(c, bool) else str(c) for c in CHOICES[path])
                raise UserError(f"Key '{path}' in {where} is {value!r}; it must be one of: {allowed}.")
        elif not _type_ok(default, value):
            raise UserError(f"Key '{path}' in {where} must be {_type_name(default)}, not {value!r}.")


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
                near = difflib.get_close_matches(str(key), ["active_set", "sets", "defaults"], n=1)
                hint = f" (did you mean '{near[0]}'?)" if near else ""
                raise UserError(f"Unknown top-level key '{key}' in {path}{hint}; "
                                "valid keys: active_set, sets, defaults.")
        self.defaults = raw.get("defaults")
        if not isinstance(self.defaults, dict):
            raise UserError(f"{path} has no 'defaults' mapping; it holds the value of every setting.")
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

    def _check_ensemble(self, set_id, members):
        where = f"Set '{set_id}' of {self.path}"
        if not isinstance(members, list) or len(members) < 2 or not all(isinstance(m, str) for m in members):
            raise UserError(f"{where}: ensemble must list two or more set ids, e.g. ensemble: [vgg7, cnn8_avg].")
        for member in members:
            if member not in self.sets:
                near = difflib.get_close_matches(member, list(self.sets), n=1)
                hint = f" (did you mean '{near[0]}'?)" if near else ""
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
            near = difflib.get_close_matches(str(teacher_id), list(self.sets), n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
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
        set_id = set_id or self.active_set
        if set_id not in self.sets:
            near = difflib.get_close_matches(str(set_id), list(self.sets), n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise UserError(f"Set '{set_id}' is not defined in {self.path}{hint}; "
                            f"defined sets: {', '.join(self.sets)} (see --show_sets).")
        params = deep_merge(self.defaults, self.sets[set_id]["overrides"])
        for text in overrides:
            key, value = parse_param_override(text)
            if get_path(self.defaults, key, _MISSING) is _MISSING and not _under_free(key):
                parent, _, leaf = key.rpartition(".")
                siblings = get_path(self.defaults, parent) if parent else self.defaults
                options = list(siblings) if isinstance(siblings, dict) else []
                near = difflib.get_close_matches(leaf, options, n=1)
                hint = f" (did you mean '{(parent + '.') if parent else ''}{near[0]}'?)" if near else ""
                raise UserError(f"--param {key} names no setting in {self.path}{hint}.")
            nested = {}
            set_path(nested, key, value)
            check_against_schema(nested, self.defaults, f"--param {text}")
            set_path(params, key, value)
        check_ranges(params, f"set '{set_id}' of {self.path}" + (" with --param overrides" if overrides else ""))
        params["set_id"] = set_id
        params["description"] = self.sets[set_id]["description"]
        params["ensemble"] = list(self.sets[set_id]["ensemble"] or [])
        if params["ensemble"]:  # the clips it classifies are its members'
            params["dataset"] = self.resolve(params["ensemble"][0], overrides)["dataset"]
        return params


_MISSING = object()


def _under_free(key):
    return any(key.startswith(free + ".") for free in FREE_FORM)


# Settings that change how a stage reports, not what it computes: left out of the hashes.
NOT_HASHED = {"learner": ("verbose",)}

# How many of its items a stage makes, where item k never depends on that count (copy k of a clip is a function of
# (seed, clip, k)): left out of that stage's hash alone, so a cache of 4 copies serves a run that reads 2, and a run
# of 6 adds only copies 5 and 6 to it. Later stages still hash the count: it changes what a network trains on.
COUNTS = {"augmented_features": {"learner.augmentation.waveform": ("copies",)}}


class Within(dict):
    """Neutral values of keys inside a setting's dict (the others in it are hashed as before); `whole`, when
    given, says of a value when the entire dict is neutral."""

    def __init__(self, whole=None, **values):
        super().__init__(**values)
        self.whole = whole


# Settings added after models were trained and cached: at these values they are left out of the hashes,
# so that adding them did not invalidate anyone's cache.
NEUTRAL = {"learner": {"jit_compile": False, "validation_folds": [],
                       "distillation": Within(lambda d: not d.get("teacher"), consistent=False),
                       "ema_momentum": 0.0, "ema_refresh_batch_norm": False,
                       "fine_tuning": {"frozen_epochs": 0, "unfreeze": "all", "learning_rate": None,
                                       "batch_norm_frozen": True},
                       "augmentation": Within(steady_background=0.0, steady_background_snr_db=[10, 30],
                                              freq_mixstyle=0.0, freq_mixstyle_alpha=0.3, mixup_kind="log_mel",
                                              filter_augment=0.0, filter_augment_db=[-6, 6],
                                              waveform=Within(vocoder="separate"))}}


def _neutral_values(section):
    """The neutral values under a section, dotted or not ('learner.augmentation.waveform' finds the Within
    nested in NEUTRAL['learner'], so each neutral value is written once)."""
    first, *rest = section.split(".")
    values = NEUTRAL.get(first, {})
    for part in rest:
        values = values.get(part) if isinstance(values.get(part), Within) else {}
    return values


def _neutral(section, key, value):
    test = _neutral_values(section).get(key, _MISSING)
    if isinstance(test, Within):
        return bool(test.whole and test.whole(value))
    return test(value) if callable(test) else value == test


def _without_neutral_within(section, key, value):
    test = _neutral_values(section).get(key)
    return _strip_neutral(value, test) if isinstance(test, Within) and isinstance(value, dict) else value


def _strip_neutral(value, test):
    """`value` without the keys at their neutral values in `test`, a Within that may hold Withins."""
    out = {}
    for k, v in value.items():
        if isinstance(test.get(k), Within) and isinstance(v, dict):
            out[k] = _strip_neutral(v, test[k])
        elif not (k in test and test[k] == v):
            out[k] = v
    return out


def stage_hash(params, stage, with_counts=False):
    """A short hash of the parameters `stage` depends on: its cache folder's name. `with_counts` keeps the counts
    that COUNTS leaves out, for a cache that holds exactly that many items (the teacher's targets of the copies)."""
    relevant = {section: get_path(params, section) for section in STAGE_SECTIONS[stage]}
    relevant = {section: value for section, value in relevant.items()  # a neutral setting named on its own
                if "." not in section or not _neutral(*section.rsplit(".", 1), value)}
    for section in relevant:
        if isinstance(relevant[section], dict):
            left_out = NOT_HASHED.get(section, ()) + (() if with_counts else COUNTS.get(stage, {}).get(section, ()))
            relevant[section] = {k: _without_neutral_within(section, k, v) for k, v in relevant[section].items()
                                 if k not in left_out and not _neutral(section, k, v)}
    if "learner" in relevant:
        relevant["learner"] = own_family(relevant["learner"])
    return text_hash(json.dumps(relevant, sort_keys=True, default=str))


def own_family(learner):
    """Learner settings with only the family its model is built from: the other families change nothing."""
    if isinstance(learner, dict) and isinstance(learner.get("families"), dict):
        return dict(learner, families={learner["model"]: learner["families"].get(learner["model"])})
    return learner


def params_hash(params):
    return text_hash(json.dumps({k: v for k, v in params.items() if k not in ("description",)}, sort_keys=True,
                                default=str))


def text_hash(text):
    return hashlib.sha256(text.encode()).hexdigest()[:10]
