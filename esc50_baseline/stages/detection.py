"""The sound event detection stage: each active fold's trained model (an ensemble's members averaged) turned
into a detector and measured on synthetic soundscapes of that fold's test clips, its decision thresholds
tuned (never on the test fold) on soundscapes of clips the model has not trained on: the fold's validation
clips; without them, in a run of several folds, the other folds' test soundscapes, each scored by its own
fold's model (out of fold); only in a one-fold run without validation clips, its training clips.

Per fold, in the set's sed/ folder: the thresholds, the detected events (DCASE task 4 TSV), a figure of
one soundscape, and the figures in a YAML; then the DCASE-style tables of all folds, and a table of what
each post-processing step adds.
"""
import os
from collections import namedtuple
from dataclasses import replace

import numpy as np

from .. import results_io
from ..data.audio import read_clip
from ..data.dataset import fold_seed
from ..detection import curves, events, scoring, soundscapes
from ..evaluation import plots
from .common import section
from .predict import set_scorer

TUNING_GRID = np.round(np.arange(0.05, 0.96, 0.05), 2)
PSDS_THRESHOLDS = np.round(np.linspace(0.01, 0.99, 50), 4)  # the operating points of the DCASE 2021 task 4 baseline
MIN_EVENTS_TO_TUNE_A_CLASS = 3


def do_sed_evaluation(ctx):
    section("Sound event detection (synthetic soundscapes)")
    detection = ctx.params["detection"]
    labels = list(ctx.dataset.labels)
    per_fold, tests = {}, ScoredTestPools(ctx, detection)
    for fold in ctx.folds:
        out = ctx.sed_fold_path(fold)
        plan = tuning_plan(ctx, fold)
        if not ctx.overwrite and results_io.intact(results_io.read_yaml, out):
            cached = results_io.read_yaml(out)
            if [cached.get("tuned_on"), cached.get("tuning_folds", [])] == _plan_record(plan):
                per_fold[fold] = cached
                print(f"  Fold {fold}: cached ({out})")
                continue
        per_fold[fold] = evaluate_fold(ctx, fold, detection, labels, tests, plan)
        results_io.write_yaml(out, per_fold[fold])
    text = "\n\n".join([overall_table(per_fold) + "\n" + tuning_note(per_fold), steps_table(per_fold, detection),
                         class_table(per_fold, labels)])
    print(text)
    results_io.atomic_write_text(ctx.sed_path("sed_tables.txt"), text + "\n")
    print(f"\n  Soundscapes in {ctx.paths['soundscapes']}; detections and figures in {ctx.paths['sed']}")


def pool_folder(ctx, fold, pool, clips):
    """A fold's soundscapes of one pool (test or validation) made from `clips`, made when missing:
    [(name, path)], durations."""
    folder = ctx.soundscape_folder(fold, pool)
    fs = ctx.settings.fs
    names = soundscapes.make(folder, [(ctx.dataset.audio_path(c), c.category) for c in clips],
                             lambda path: read_clip(path, fs), fs,
                             soundscapes.SoundscapeSettings.from_params(ctx.params["detection"]["soundscapes"]),
                             seed=[fold_seed(ctx.params["general"]["seed"], fold), int(pool == "test")])
    return [(n, os.path.join(folder, n)) for n in names], soundscapes.read_index(folder)


def tuning_clips(ctx, fold):
    """The clips the thresholds are tuned on, and whether the model has trained on them: the fold's validation
    clips (an ensemble's: those that every member held out), else its training clips."""
    held = held_out(ctx, fold)
    if held:
        return held, False
    first = ctx
    while first.members:
        first = first.members[0]
    return first.split(fold)[0], True


def held_out(ctx, fold):
    """The fold's training clips that the set's model (every member of an ensemble) did not train on."""
    if not ctx.members:
        return ctx.split(fold)[1]
    common = set.intersection(*({c.filename for c in held_out(m, fold)} for m in ctx.members))
    return [c for c in held_out(ctx.members[0], fold) if c.filename in common]


Pool = namedtuple("Pool", "names curves references durations")  # soundscapes, their score curves, annotations
OUT_OF_FOLD = "out_of_fold"


def tuning_plan(ctx, fold):
    """Where the fold's thresholds are tuned: ("validation", clips) the model held out; else, with other active
    folds, (OUT_OF_FOLD, those folds): their test soundscapes, each scored by its own fold's model, which has
    not trained on them; else ("training", clips): the fold's training clips, which its model has seen."""
    clips, seen = tuning_clips(ctx, fold)
    others = [f for f in ctx.folds if f != fold]
    if seen and others:
        return OUT_OF_FOLD, others
    return ("training" if seen else "validation"), clips


def _plan_record(plan):
    """[tuned_on, tuning_folds] as a fold's result file keeps them."""
    kind, source = plan
    return [kind, [str(f) for f in source] if kind == OUT_OF_FOLD else []]


def clip_scorer(ctx, fold):
    """scorer(clips) of one fold's model (each member's, averaged, for an ensemble), classifying clips as the
    testing stage does (`predict.set_scorer`)."""
    return set_scorer(ctx, folds=[fold])[0]


class ScoredTestPools:
    """Each fold's test soundscapes as a Pool, scored by that fold's model; the pool and the model each made
    (loaded) once, on first use."""
    def __init__(self, ctx, detection):
        self.ctx, self.detection, self._pools, self._scorers = ctx, detection, {}, {}

    def __call__(self, fold):
        if fold not in self._pools:
            named, durations = pool_folder(self.ctx, fold, "test", self.ctx.dataset.test(fold))
            scored = pool_curves(self.ctx, self.scorer(fold), named, self.detection)
            self._pools[fold] = Pool([n for n, _ in named], scored, references_of(named), durations)
        return self._pools[fold]

    def scorer(self, fold):
        if fold not in self._scorers:
            self._scorers[fold] = clip_scorer(self.ctx, fold)
        return self._scorers[fold]


def tuning_pool(ctx, fold, plan, tests, detection):
    """The Pool the fold's thresholds are tuned on (see tuning_plan); out of fold, the other folds' pools
    joined, each soundscape named by its fold."""
    kind, source = plan
    if kind == OUT_OF_FOLD:
        joined = [(f"fold_{f}/{name}", f, name) for f in source for name in tests(f).names]
        return Pool([key for key, _f, _n in joined],
                    *({key: getattr(tests(f), part)[name] for key, f, name in joined}
                      for part in ("curves", "references", "durations")))
    named, durations = pool_folder(ctx, fold, "validation", source)
    return Pool([n for n, _ in named], pool_curves(ctx, tests.scorer(fold), named, detection), references_of(named),
                durations)


def pool_curves(ctx, scorer, named, detection):
    s = ctx.settings
    return {name: curves.detection_curve(path, s.fs, s.n_samples, scorer, detection, len(ctx.dataset.labels))[0]
            for name, path in named}


def references_of(named):
    return {name: soundscapes.read_annotations(path[:-len(".wav")] + ".tsv") for name, path in named}


def detect_all(curve_map, durations, labels, hop, post):
    return {name: events.detect(curve, hop, labels, post, durations[name]) for name, curve in curve_map.items()}


def evaluate_fold(ctx, fold, detection, labels, tests, plan):
    hop = curves.curve_hop(detection)
    test = tests(fold)
    tuning = tuning_pool(ctx, fold, plan, tests, detection)
    print(f"  Fold {fold}: {len(test.names)} test soundscapes, {len(tuning.names)} for tuning "
          f"({_tuning_words(ctx, plan)})", flush=True)
    thresholds = tuned_thresholds(tuning.curves, tuning.references, tuning.durations, labels, hop, detection)
    test_curves, references, durations = test.curves, test.references, test.durations
    post = events.PostProcessing.from_params(detection, thresholds)
    detected = detect_all(test_curves, durations, labels, hop, post)
    segment, event = scoring.sed_eval_metrics(references, detected, durations, labels)
    tuned_on, tuning_folds = _plan_record(plan)
    result = dict(scoring.summary(segment, event),
                  psds1=psds_of(test_curves, references, durations, labels, hop, post),
                  soundscapes=len(test.names), reference_events=sum(len(r) for r in references.values()),
                  thresholds={label: float(t) for label, t in zip(labels, thresholds)},
                  tuned_on=tuned_on, tuning_folds=tuning_folds,
                  class_wise=scoring.class_wise(segment, event, labels),
                  steps=steps(test_curves, references, durations, labels, hop, detection, thresholds))
    _write_detections(ctx.sed_path(f"detections_fold_{fold}.tsv"), detected)
    name = test.names[0]
    plots.score_curves_png(test_curves[name], hop, labels, detected[name], ctx.sed_path(f"example_fold_{fold}.png"),
                           f"{ctx.params['set_id']}, fold {fold}: {name}", references[name])
    return result


def _tuning_words(ctx, plan):
    kind, source = plan
    if kind == "validation":
        return "of its validation clips"
    none = "its members have no validation clips in common" if ctx.members else "it has no validation clips"
    if kind == OUT_OF_FOLD:
        return (f"out of fold: the test soundscapes of fold(s) {', '.join(map(str, source))}, each scored by its own "
                f"fold's model, which has not trained on them; {none}")
    return f"of its training clips: {none}, and the model has seen these"


def tuned_thresholds(curve_map, references, durations, labels, hop, detection):
    """One threshold for every class, or `detection.thresholds` tuned: the one of TUNING_GRID with the best
    event-based F1 over the validation soundscapes, and per class (where they hold enough of its events) the
    one with the best F1 of that class."""
    if detection["thresholds"] != "tuned":
        return np.full(len(labels), float(detection["thresholds"]))
    overall, per_class = [], []
    for t in TUNING_GRID:
        post = events.PostProcessing.from_params(detection, t)
        segment, event = scoring.sed_eval_metrics(references, detect_all(curve_map, durations, labels, hop, post),
                                                  durations, labels)
        overall.append(scoring.summary(segment, event)["event_f1"])
        per_class.append([scoring.class_wise(segment, event, [label])[label]["event_f1"] for label in labels])
    best = float(TUNING_GRID[int(np.argmax(overall))])
    counts = {label: sum(e[2] == label for r in references.values() for e in r) for label in labels}
    per_class = np.array(per_class)
    return np.array([float(TUNING_GRID[int(np.argmax(per_class[:, c]))])
                     if detection["per_class_thresholds"] and counts[label] >= MIN_EVENTS_TO_TUNE_A_CLASS else best
                     for c, label in enumerate(labels)])


def psds_of(curve_map, references, durations, labels, hop, post):
    """PSDS (scenario 1) of the curves over PSDS_THRESHOLDS, each operating point post-processed like `post`
    but for its threshold."""
    points = [detect_all(curve_map, durations, labels, hop, replace(post, thresholds=t)) for t in PSDS_THRESHOLDS]
    return scoring.psds(references, points, durations)


def steps(curve_map, references, durations, labels, hop, detection, thresholds):
    """The figures as each post-processing step that is on is added: [(step, segment F1, event F1, PSDS1)]."""
    median, gap, shortest = (detection[k] for k in ("median_filter_seconds", "max_gap_seconds", "min_event_seconds"))
    settings = [("threshold 0.5 for every class", events.PostProcessing(0.5)),
                ("tuned thresholds", events.PostProcessing(thresholds))]
    for name, value, post in [(f"+ median filter {median:g} s", median, events.PostProcessing(thresholds, median)),
                              (f"+ gaps up to {gap:g} s merged", gap, events.PostProcessing(thresholds, median, gap)),
                              (f"+ events under {shortest:g} s dropped", shortest,
                               events.PostProcessing(thresholds, median, gap, shortest))]:
        if value:
            settings.append((name, post))
    rows = []
    for name, post in settings:
        segment, event = scoring.sed_eval_metrics(references, detect_all(curve_map, durations, labels, hop, post),
                                                  durations, labels)
        figures = scoring.summary(segment, event)
        psds = rows[-1][3] if name == "tuned thresholds" else psds_of(curve_map, references, durations, labels, hop,
                                                                       post)
        rows.append([name, figures["segment_f1"], figures["event_f1"], psds])
    return rows


def _write_detections(path, detected):
    lines = ["filename\tonset\toffset\tevent_label"] + [f"{name}\t{on:.3f}\t{off:.3f}\t{label}"
                                                        for name in sorted(detected) for on, off, label in detected[name]]
    results_io.atomic_write_text(path, "\n".join(lines) + "\n")


def _mean(per_fold, key):
    return float(np.mean([r[key] for r in per_fold.values()]))


def overall_table(per_fold):
    head = (f"   {'Fold':<6} {'Soundscapes':>11} {'Events':>7} {'Seg F1':>7} {'Seg ER':>7} {'Evt F1':>7} {'Evt ER':>7} "
            f"{'Evt F1 macro':>12} {'PSDS1':>6}")
    lines = ["   Detection, overall (segment-based: 1 s segments; event-based: onset collar 200 ms, offset 20 % or "
             "200 ms)", "", head, "   " + "-" * (len(head) - 3)]
    keys = ("segment_f1", "segment_error_rate", "event_f1", "event_error_rate", "event_f1_macro", "psds1")
    for fold, r in list(per_fold.items()) + ([("mean", None)] if len(per_fold) > 1 else []):
        r = r or {k: _mean(per_fold, k) for k in keys + ("soundscapes", "reference_events")}
        lines.append(f"   {str(fold):<6} {r['soundscapes']:>11.0f} {r['reference_events']:>7.0f} {r['segment_f1']:>7.3f} "
                     f"{r['segment_error_rate']:>7.3f} {r['event_f1']:>7.3f} {r['event_error_rate']:>7.3f} "
                     f"{r['event_f1_macro']:>12.3f} {r['psds1']:>6.3f}")
    return "\n".join(lines)


def tuning_note(per_fold):
    """Which soundscapes each fold's thresholds were tuned on, a line for each kind."""
    words = {"validation": "on soundscapes of its validation clips",
             "training": "on soundscapes of its training clips (seen by the model)",
             OUT_OF_FOLD: "out of fold (on the other folds' test soundscapes, each scored by its own fold's model)"}
    folds_of = {}
    for fold, r in per_fold.items():
        folds_of.setdefault(r["tuned_on"], []).append(str(fold))
    return "\n".join(f"   Thresholds tuned {words[kind]}: fold(s) {', '.join(folds)}"
                     for kind, folds in sorted(folds_of.items()))


def steps_table(per_fold, detection):
    names = [row[0] for row in next(iter(per_fold.values()))["steps"]]
    head = f"   {'Post-processing (mean over folds)':<40} {'Seg F1':>7} {'Evt F1':>7} {'PSDS1':>6}"
    lines = ["   What each post-processing step adds", "", head, "   " + "-" * (len(head) - 3)]
    for i, name in enumerate(names):
        values = np.mean([r["steps"][i][1:] for r in per_fold.values()], axis=0)
        lines.append(f"   {name:<40} {values[0]:>7.3f} {values[1]:>7.3f} {values[2]:>6.3f}")
    return "\n".join(lines)


def class_table(per_fold, labels):
    head = f"   {'Class':<20} {'Events':>6} {'Seg F1':>7} {'Evt F1':>7} {'Evt ER':>7} {'Threshold':>9}"
    lines = ["   Detection per class (mean over folds)", "", head, "   " + "-" * (len(head) - 3)]
    for label in labels:
        rows = [r["class_wise"][label] for r in per_fold.values()]
        threshold = np.mean([r["thresholds"][label] for r in per_fold.values()])
        rates = [x["event_error_rate"] for x in rows if x["event_error_rate"] is not None]
        lines.append(f"   {label[:20]:<20} {sum(x['references'] for x in rows):>6} "
                     f"{np.mean([x['segment_f1'] for x in rows]):>7.3f} {np.mean([x['event_f1'] for x in rows]):>7.3f} "
                     + (f"{np.mean(rates):>7.3f}" if rates else f"{'-':>7}") + f" {threshold:>9.2f}")
    return "\n".join(lines)
