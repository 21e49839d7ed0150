"""Classify arbitrary audio files with a trained set: any rate, channel count or length.

A file is read block by block and cut into clip-length windows (the last, shorter one kept when it is at
least a fifth of a clip, or when it is all there is); each window goes through the set's feature extractor,
every trained fold's normalizer and model (Keras or one TFLite format), and the scores are averaged over
models and windows.
"""
import json
import os

import numpy as np

from ..tflite.formats import RAW_AUDIO_FORMATS
from ..data.audio import AudioError, Windows, batches
from ..errors import UserError
from ..evaluation import test_time
from ..features.extraction import LogMel

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".mp3")
WINDOWS_PER_BATCH = 16  # windows in memory at once: a recording of any length is read a few blocks at a time


def find_audio(path, flag="--predict"):
    """The audio files to classify: `path`, or every audio file under the folder `path` (the others said, on
    stderr, not passed over in silence)."""
    import sys
    if os.path.isfile(path):
        return [path]
    if os.path.isdir(path):
        every = sorted(os.path.join(here, name) for here, _dirs, files in os.walk(path) for name in files)
        found = [p for p in every if p.lower().endswith(AUDIO_EXTENSIONS)]
        others = sorted({os.path.splitext(p)[1].lower() or "(no extension)" for p in every if p not in found})
        if others and found:  # (with none found, the error says what is read)
            print(f"Note: {len(every) - len(found)} file(s) in {path} are left out: {', '.join(others)} is not "
                  f"among the audio formats read ({', '.join(AUDIO_EXTENSIONS)}).", file=sys.stderr)
        if found:
            return found
        raise UserError(f"{flag} {path} holds no audio files ({', '.join(AUDIO_EXTENSIONS)}).")
    raise UserError(f"{flag} {path} does not exist; give an audio file or a folder of them.")


def short_names(paths):
    """A name for each file that tells it apart from the others: its path under the folder they share (its file
    name alone when that is unique)."""
    bases = [os.path.basename(p) for p in paths]
    if len(set(bases)) == len(bases):
        return bases
    common = os.path.commonpath([os.path.abspath(p) for p in paths])
    return [os.path.relpath(os.path.abspath(p), common) for p in paths]


class Ensemble:
    """The set's trained fold models (of `folds`, default its active ones) with their normalizers; scores
    averaged over them."""

    def __init__(self, ctx, fmt="keras", folds=None):
        folds = folds or ctx.folds
        self.members, self.paths = [], []
        self.time_shifts = ctx.params["testing"]["time_shifts"]
        # a raw-audio model normalises inside; it is given samples, and the time shifts to roll its features by
        self.raw = fmt in RAW_AUDIO_FORMATS
        self.roll = {"shift_inside": True} if self.raw else {}
        for fold in folds:
            path = ctx.model_file(fold, fmt)
            norm_path = ctx.norm_path(fold)
            if os.path.exists(path) and os.path.exists(norm_path):
                normalizer = (lambda samples: samples) if self.raw else ctx.normalizer(fold)
                self.members.append((self._load(path, fmt, ctx), normalizer))
                self.paths.append(path)
        if not self.members:
            script = "task_esc50.py" if fmt == "keras" else "task_esc50_tflite.py"
            raise UserError(f"Set '{ctx.params['set_id']}' has no trained {fmt} model for fold(s) "
                            f"{', '.join(map(str, folds))} with this dataset; run python {script} "
                            f"--set {ctx.params['set_id']}{ctx.same_settings} first.")

    @staticmethod
    def _load(path, fmt, ctx):
        if fmt == "keras":
            from .. import runtime  # noqa: F401
            from ..models import model_files
            model = model_files.load_model(path)
            return lambda x: model_files.predict(model, x)
        from ..tflite.run import TFLiteModel
        model = TFLiteModel(path, ctx.params["tflite"]["num_threads"])
        return lambda x, shift=0: model.predict(x, shift)[0]

    def __call__(self, inputs):
        """inputs: the windows' features (their samples for a raw-audio format) -> mean probabilities."""
        return np.mean([test_time.averaged(model, normalizer(inputs), self.time_shifts, **self.roll)
                        for model, normalizer in self.members], axis=0)


def set_scorer(ctx, fmt="keras", folds=None):
    """(scorer(clips) -> probabilities, the model files): clips (batch, samples) at the set's rate and clip length,
    classified by every trained model of `folds` (default the active ones) of the set, or of each of an
    ensemble's members, averaged, over the set's test-time shifts."""
    sets = ctx.members or [ctx]
    for other in sets[1:]:
        if (other.settings.fs, other.settings.n_samples) != (sets[0].settings.fs, sets[0].settings.n_samples):
            raise UserError(f"Member sets {sets[0].params['set_id']} and {other.params['set_id']} cut audio into "
                            "different windows (feature_extractor.fs or clip_seconds); --predict and --detect need "
                            "them equal.")
    scorers = [((lambda samples: samples) if fmt in RAW_AUDIO_FORMATS else LogMel(s.settings), Ensemble(s, fmt, folds))
               for s in sets]

    def scorer(clips):
        return np.mean([models(np.stack([extract(c) for c in clips])) for extract, models in scorers], axis=0)
    return scorer, [p for _, models in scorers for p in models.paths]


def predict_files(ctx, paths, fmt="keras", per_window=False, folds=None, answered_by=None):
    """Every file's scores (and each window's, with `per_window`), by the models of `folds` (default the active
    ones); `answered_by` says which models those are. Windows of several files share a batch: a folder of short
    clips costs a model call per batch, not per file."""
    scorer, models = set_scorer(ctx, fmt, folds)
    settings = (ctx.members or [ctx])[0].settings
    labels = ctx.dataset.labels
    windows = [Windows(path, settings.fs, settings.n_samples) for path in paths]
    scores, errors = [[] for _ in paths], {}

    def every_window():
        for i, recording in enumerate(windows):
            try:
                for window in recording:
                    yield i, window
            except AudioError as e:
                errors[i] = e.problem
    for batch in batches(every_window(), WINDOWS_PER_BATCH):
        for (i, _window), s in zip(batch, scorer([window for _i, window in batch])):
            scores[i].append(s)
    results = []
    for i, path in enumerate(paths):
        if i in errors:
            results.append({"file": path, "error": errors[i]})
            continue
        entry = {"file": path, "duration_s": round(windows[i].samples / settings.fs, 3), "windows": len(scores[i]),
                 "scores": dict(zip(labels, map(float, np.mean(scores[i], axis=0))))}
        if per_window:
            entry["window_scores"] = [dict(zip(labels, map(float, s))) for s in scores[i]]
        results.append(entry)
    answered_by = answered_by or f"{len(models)} model(s) averaged"
    return {"set": ctx.params["set_id"], "format": fmt, "answered_by": answered_by, "models": models, "files": results}


def top(scores, k):
    return sorted(scores.items(), key=lambda item: -item[1])[:k]


def as_json(prediction, k):
    out = dict(prediction, files=[])
    for entry in prediction["files"]:
        entry = dict(entry)
        if "scores" in entry:
            entry["top"] = [{"label": label, "probability": round(p, 6)} for label, p in top(entry.pop("scores"), k)]
        if "window_scores" in entry:
            entry["window_scores"] = [[{"label": label, "probability": round(p, 6)} for label, p in top(s, k)]
                                      for s in entry["window_scores"]]
        out["files"].append(entry)
    return json.dumps(out, indent=2)


def as_table(prediction, k):
    lines = [f"Set {prediction['set']} ({prediction['format']}): {prediction['answered_by']}",
             f"   {'File':<32} {'Length':>7} {'Win':>4}  " + "  ".join(f"{'Top ' + str(i + 1):<24}" for i in range(k)),
             "   " + "-" * (46 + 26 * k)]
    for entry in prediction["files"]:
        name = os.path.basename(entry["file"])[:32]
        if "error" in entry:
            lines.append(f"   {name:<32} error: {entry['error']}")
            continue
        cells = "  ".join(f"{label[:17]:<17} {p:>5.2f} " for label, p in top(entry["scores"], k))
        lines.append(f"   {name:<32} {entry['duration_s']:>6.1f}s {entry['windows']:>4}  {cells}")
        for i, scores in enumerate(entry.get("window_scores", [])):
            cells = "  ".join(f"{label[:17]:<17} {p:>5.2f} " for label, p in top(scores, k))
            lines.append(f"   {'  window ' + str(i + 1):<32} {'':>7} {'':>4}  {cells}")
    return "\n".join(lines)


def predict_stream(ctx, stream, rate, channels=1, window_s=None, hop_s=1.0, fmt="keras", folds=None, answered_by=None,
                   k=3, as_json=False, out=None):
    """Classify a live stream of raw 16-bit PCM window by window as it arrives, printing a line a window (a JSON
    object a line with `as_json`) with the stream time of its end and the latency of the decision: from the arrival
    of the window's last sample to its label. Returns the number of windows."""
    import sys
    import time
    from ..data.stream import PcmWindows, StreamError
    out = out or sys.stdout
    settings = (ctx.members or [ctx])[0].settings
    clip_s = settings.n_samples / settings.fs
    window_s = clip_s if window_s is None else window_s
    if not 0 < window_s <= clip_s:
        raise UserError(f"--window_seconds is {window_s:g}; give a window of more than 0 and at most the set's clip "
                        f"length, {clip_s:g} s (a shorter window is zero-padded to it).")
    if hop_s <= 0:
        raise UserError(f"--hop_seconds is {hop_s:g}; give a hop of more than 0 s.")
    scorer, models = set_scorer(ctx, fmt, folds)
    labels = ctx.dataset.labels
    if not as_json:
        print(f"Set {ctx.params['set_id']} ({fmt}): {answered_by or f'{len(models)} model(s) averaged'}; "
              f"{window_s:g} s windows every {hop_s:g} s of {channels}-channel 16-bit PCM at {rate} Hz from "
              "standard input", file=out, flush=True)
    windows = PcmWindows(stream, rate, channels, settings.fs, int(round(window_s * settings.fs)),
                         max(1, int(round(hop_s * settings.fs))))
    count = 0
    try:
        for window, end_s, arrived in windows:
            padded = np.pad(window, (0, settings.n_samples - len(window)))
            scores = scorer(padded[None])[0]
            latency_ms = 1000 * (time.monotonic() - arrived)
            best = top(dict(zip(labels, map(float, scores))), k)
            if as_json:
                print(json.dumps({"end_s": round(end_s, 3), "latency_ms": round(latency_ms, 1),
                                  "top": [{"label": label, "probability": round(p, 6)} for label, p in best]}),
                      file=out, flush=True)
            else:
                cells = "  ".join(f"{label[:17]:<17} {p:>5.2f}" for label, p in best)
                print(f"   {end_s:>8.1f} s  {cells}   ({latency_ms:.0f} ms)", file=out, flush=True)
            count += 1
    except StreamError as e:
        raise UserError(f"--predict -: {e}; check --rate and --channels against what the pipe sends.")
    if not count:
        raise UserError("--predict - read no audio from standard input; pipe raw 16-bit PCM into it, e.g. "
                        "arecord -f S16_LE -r 16000 -c 1 -t raw | python task_esc50.py --predict - --rate 16000.")
    return count
