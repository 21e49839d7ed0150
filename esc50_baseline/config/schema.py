"""The schema of the settings: the `defaults` section of the YAML names every key and its type; these tables add
what a value must be (choices, ranges, the keys whose values are free-form), and one suggestion for a misspelt name.
The augmentations' settings are declared with the augmentations (features/spectrogram_augmentation.py) and the
TFLite formats with the TFLite toolkit; their checks are taken from there."""
import difflib

from ..errors import UserError
from ..features.spectrogram_augmentation import AUGMENTATIONS
from ..tflite.formats import FEATURE_FORMATS as TFLITE_FEATURE_FORMATS  # noqa: F401  (re-exported)
from ..tflite.formats import FORMATS as TFLITE_FORMATS
from ..tflite.formats import RAW_AUDIO_FORMATS  # noqa: F401  (re-exported)
from ..validation import at_least as _at_least, number as _number, positive as _positive, value_range as _range

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
}
CHOICES.update({f"learner.augmentation.{s.key}": list(s.choices) for a in AUGMENTATIONS for s in a.settings if s.choices})


def _time_shifts(v):
    return bool(v) and all(isinstance(s, int) and not isinstance(s, bool) for s in v)


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
    ("learner.augmentation.waveform.copies", _at_least(0), "0 (off) or more"),
    ("learner.augmentation.waveform.recording_chain", lambda v: _number(v) and 0 <= v <= 1, "a chance from 0 to 1"),
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
    ("feature_extractor.fmax", lambda v: _number(v) and v > 0, "a frequency in Hz above 0 (or null: fs / 2)"),
    ("general.active_folds", lambda v: v in ("all", "last") or (isinstance(v, (list, int, str)) and not isinstance(v, bool)),
     "all, last, or a list of fold labels, e.g. [1, 3]"),
    ("learner.fine_tuning.unfreeze", lambda v: v == "all" or (isinstance(v, int) and not isinstance(v, bool) and v >= 0),
     "all, or the number of the backbone's last blocks that train, e.g. 2"),
    ("learner.families", lambda v: isinstance(v, dict), "a mapping of family names to their settings"),
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
RANGES += [(f"learner.augmentation.{s.key}", s.valid, s.must) for a in AUGMENTATIONS for s in a.settings if s.valid]


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


def is_free(path):
    return path in FREE_FORM


def under_free(key):
    return any(key.startswith(free + ".") for free in FREE_FORM)


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
            hint = did_you_mean(key, schema, prefix)
            raise UserError(f"Unknown key '{path}' in {where}{hint}; valid keys here: "
                            f"{', '.join(map(str, schema))}.")
        default = schema[key]
        if is_free(path):
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


def did_you_mean(name, options, prefix=""):
    """' (did you mean 'PREFIX+NEAREST'?)' for the option nearest to a misspelt `name`, or '' when none is near."""
    near = difflib.get_close_matches(str(name), [str(o) for o in options], n=1)
    return f" (did you mean '{prefix}{near[0]}'?)" if near else ""


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
