"""The cache folders' names: each stage's output folder is named by a hash of exactly the parameters that stage
depends on (STAGE_SECTIONS), so editing one setting invalidates only the stages downstream of it. Settings added
after caches existed are left out of the hashes at their neutral values, so adding them renamed no cache."""
import hashlib
import json

from ..features.spectrogram_augmentation import AUGMENTATIONS, NOT_NEUTRAL
from .schema import get_path

_ABSENT = object()


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
NEUTRAL = {"dataset": {"columns": {"filename": "filename", "fold": "fold", "target": "target", "category": "category",
                                   "src_file": "src_file", "esc10": "esc10"},
                       "file_pattern": "{filename}"},
           "learner": {"jit_compile": False, "validation_folds": [],
                       "distillation": Within(lambda d: not d.get("teacher"), consistent=False),
                       "ema_momentum": 0.0, "ema_refresh_batch_norm": False,
                       "fine_tuning": {"frozen_epochs": 0, "unfreeze": "all", "learning_rate": None,
                                       "batch_norm_frozen": True},
                       "augmentation": Within(waveform=Within(vocoder="separate", recording_chain=0.0),
                                              **{s.key: s.neutral for a in AUGMENTATIONS for s in a.settings
                                                 if s.neutral is not NOT_NEUTRAL})}}


def _neutral_values(section):
    """The neutral values under a section, dotted or not ('learner.augmentation.waveform' finds the Within
    nested in NEUTRAL['learner'], so each neutral value is written once)."""
    first, *rest = section.split(".")
    values = NEUTRAL.get(first, {})
    for part in rest:
        values = values.get(part) if isinstance(values.get(part), Within) else {}
    return values


def _neutral(section, key, value):
    test = _neutral_values(section).get(key, _ABSENT)
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
