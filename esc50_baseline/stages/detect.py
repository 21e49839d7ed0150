"""--detect: the events of recordings of any length, with a trained set's fold models averaged, its tuned
thresholds (the mean of its folds', once flow.sed_evaluation has run) and the YAML's post-processing. Writes
one DCASE task 4 TSV of every file's events and a PNG of each file's score curves with its events marked."""
import os

import numpy as np

from .. import results_io
from ..data.audio import AudioError
from ..detection import curves, events
from ..errors import UserError
from ..evaluation import plots
from .predict import set_scorer, short_names


def thresholds(ctx, labels):
    """(per-class thresholds, where they come from)."""
    setting = ctx.params["detection"]["thresholds"]
    if setting != "tuned":
        return np.full(len(labels), float(setting)), f"detection.thresholds: {setting}"
    tuned = [ctx.sed_fold_path(fold) for fold in ctx.folds]
    tuned = [results_io.read_yaml(p)["thresholds"] for p in tuned if results_io.intact(results_io.read_yaml, p)]
    if not tuned:
        return np.full(len(labels), 0.5), ("0.5 for every class: none tuned yet (they are, on validation "
                                           "soundscapes, when the set runs with flow.sed_evaluation)")
    return (np.array([np.mean([t[label] for t in tuned]) for label in labels]),
            f"tuned, the mean of {len(tuned)} fold(s)")


def check_output(output_dir):
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise UserError(f"--detect_output {output_dir} is a file; name a folder for detections.tsv and the figures.")


def detect_files(ctx, paths, output_dir, folds=None, answered_by=None):
    """Detect events in every file with the models of `folds` (default the active ones; `answered_by` says which);
    returns the printed report."""
    detection, labels, settings = ctx.params["detection"], list(ctx.dataset.labels), ctx.settings
    values, source = thresholds(ctx, labels)
    post = events.PostProcessing.from_params(detection, values)
    hop = curves.curve_hop(detection)
    lines, rows = [f"Set {ctx.params['set_id']}" + (f" ({answered_by})" if answered_by else "")
                   + f": thresholds {source}; " + (
        (f"active segments ({detection['activity_db']:g} dB over the noise floor), each classified whole"
         + (" without the floor" if detection["denoise"] else "")) if detection["segmentation"] == "spectral" else
        f"{detection['window_seconds']:g} s windows every {detection['hop_seconds']:g} s")], []
    readable = 0
    check_output(output_dir)
    scorer = set_scorer(ctx, folds=folds)[0]
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as e:
        raise UserError(f"--detect_output {output_dir} cannot be made ({e.strerror}); name a folder you can write.")
    for path, name in zip(paths, short_names(paths)):
        try:
            curve, duration = curves.detection_curve(path, settings.fs, settings.n_samples, scorer, detection,
                                                     len(labels))
        except AudioError as e:
            lines.append(f"   {name}: error: {e.problem}")
            continue
        readable += 1
        found = events.detect(curve, hop, labels, post, duration)
        rows += [f"{name}\t{on:.3f}\t{off:.3f}\t{label}" for on, off, label in found]
        figure = os.path.join(output_dir, os.path.splitext(name)[0].replace(os.sep, "__") + ".png")
        plots.score_curves_png(curve, hop, labels, found, figure, f"{ctx.params['set_id']}: {name}")
        lines.append(f"   {name} ({duration:.1f} s): {len(found)} event(s)")
        lines += [f"      {on:8.2f} {off:8.2f}  {label}" for on, off, label in found]
    if not readable:
        raise UserError(f"None of the {len(paths)} file(s) given to --detect could be read.")
    table = os.path.join(output_dir, "detections.tsv")
    results_io.atomic_write_text(table, "filename\tonset\toffset\tevent_label\n" + "".join(r + "\n" for r in rows))
    lines.append(f"Events in {table} (DCASE task 4 format), score curves in {output_dir}/*.png")
    return "\n".join(lines)
