"""The models that answer --predict and --detect: a set's own final model (task_esc50.py --final), else its fold
models, else the model shipped in the repository (pretrained/SET/: the set's final model on all of ESC-50, found
without the dataset, so that a fresh clone classifies out of the box).

A shipped folder is laid out like the cache (the final model's files under their cache names) beside
settings.yaml (the set, the hash of the settings its network was trained with, and those settings) and
MODEL_CARD.md; tools/ship_model.py makes it."""
import os

from .. import config
from ..config.parameters import SHIPPED
from ..data.dataset import FINAL
from ..errors import UserError
from .context import KERAS, RunContext

PRETRAINED = os.path.join(os.path.dirname(SHIPPED), "pretrained")
SETTINGS_FILE = "settings.yaml"
CARD_FILE = "MODEL_CARD.md"


def model_settings_hash(params):
    """What a trained network is a function of (its learner stage's hash, without the dataset's location, which
    names a cache but changes no weight): a shipped model answers for a set only when the set's hash is its."""
    return config.stage_hash(params, "learner")


def shipped_folder(set_id):
    return os.path.join(PRETRAINED, set_id)


class Labels:
    """The part of a Dataset that prediction reads: the class names, in the models' output order."""

    def __init__(self, labels):
        self.labels = labels


def shipped_context(params, folder=None):
    """(the RunContext of the model shipped for this set, None), or (None, why not); `folder`: another than its
    place under pretrained/ (one being made)."""
    from ..results_io import read_yaml
    folder = folder or shipped_folder(params["set_id"])
    settings_path = os.path.join(folder, SETTINGS_FILE)
    if not os.path.exists(settings_path):
        return None, f"no model is shipped for set {params['set_id']}"
    shipped = read_yaml(settings_path)
    if shipped["settings_hash"] != model_settings_hash(params):
        return None, (f"the model shipped in {folder} was trained with other settings than set {params['set_id']} "
                      "has now")
    with open(os.path.join(folder, "labels.txt"), encoding="utf-8") as f:
        labels = [line.rstrip("\n") for line in f if line.strip()]
    paths = {stage: folder for stage in ("learner", "normalization", "tflite", "sed")}
    return RunContext(params=params, dataset=Labels(labels), folds=[FINAL], paths=paths), None


def has_models(ctx, folds, fmt):
    """Whether every trained set of `ctx` has a model of `fmt` for one of `folds` (with its normalization)."""
    def found(c, fold):
        return os.path.exists(c.model_file(fold, fmt)) and os.path.exists(c.norm_path(fold))
    return all(any(found(c, fold) for fold in folds) for c in ctx.sets())


def answering_models(ctx, fmt):
    """(folds, description) of the models of `ctx` that answer: its final model when it has one, else its folds."""
    if has_models(ctx, [FINAL], fmt):
        if ctx.members:
            return [FINAL], f"the final models of its {len(ctx.members)} member sets, trained on every clip, averaged"
        return [FINAL], "the final model, trained on every clip"
    n = len([f for f in ctx.folds if os.path.exists(ctx.sets()[0].model_file(f, fmt))])
    return ctx.folds, f"{n} fold model(s) averaged"


def prediction_context(parameters, params, options, fmt):
    """(context, its folds to use, which models those are) for --predict and --detect: the set's final model, else
    its fold models (in the cache of the dataset it was trained on), else the model shipped for it."""
    from .setup import prepare_run
    try:
        ctx = prepare_run(parameters, params, options, quiet=True, check_audio=False, download=False)
    except UserError as e:
        if options.dataset_path is not None:  # a dataset named on the command line must be found
            raise
        ctx, problem = None, e
    if ctx is not None:
        problem = None
        if has_models(ctx, [FINAL], fmt) or has_models(ctx, ctx.folds, fmt):
            folds, description = answering_models(ctx, fmt)
            return ctx, folds, description
    shipped, why_not = shipped_context(params) if not parameters.members(params["set_id"], options.param) \
        else (None, "an ensemble set has no shipped model")
    if shipped is not None:
        missing = _shipped_file(shipped, fmt)
        if missing:
            raise UserError(f"The model shipped for set {params['set_id']} has no {fmt} file ({missing}); use "
                            f"--predict_format keras, int8 or raw_int8, or train the set's own (--final).")
        where = shown(shipped_folder(params["set_id"]))
        return shipped, [FINAL], f"the model shipped in {where}, trained on all of ESC-50"
    if problem is not None:
        raise UserError(f"Set '{params['set_id']}' has no model to classify with: {why_not}, and its own models are "
                        f"found through its dataset ({str(problem).split(';')[0]}); give --dataset_path of the dataset "
                        "it was trained on.")
    script = "task_esc50.py" if fmt == KERAS else "task_esc50_tflite.py"
    raise UserError(f"Set '{params['set_id']}' has no trained {fmt} model with this dataset and {why_not}; run "
                    f"python {script} --set {params['set_id']}{ctx.same_settings} first (with --final: one model "
                    "trained on every clip).")


def shown(path):
    """A path as the user is shown it: relative to the working folder when under it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _shipped_file(ctx, fmt):
    path = ctx.model_file(FINAL, fmt)
    return None if os.path.exists(path) else os.path.basename(path)

