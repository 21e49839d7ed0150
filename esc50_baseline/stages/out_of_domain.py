"""The out-of-domain check: each fold's model on its own test clips recorded otherwise (a telephone band, a low rate,
a lossy codec, a room, levels, noise, lengths: data/recording_chain.py), each written as a file and classified as
--predict classifies a user's file. Beside the five-fold figure, it says how the set fares on recordings unlike
ESC-50's."""
import os
import tempfile

import numpy as np

from .. import results_io
from ..data.audio import read_clip
from ..data.dataset import fold_seed
from ..data.recording_chain import CONDITIONS, write
from .common import section
from .predict import predict_files

COLUMNS = ["fold", "condition", "clips", "correct"]
CLEAN = "as recorded"


def do_out_of_domain(ctx):
    section("Out-of-domain check")
    path = ctx.results_path("out_of_domain.csv")
    models = [m for c in ctx.sets() for m in (c.model_path(f) for f in ctx.folds)]
    if os.path.exists(path) and not ctx.overwrite and all(os.path.getmtime(m) < os.path.getmtime(path) for m in models):
        rows = read_rows(path)
        print(f"  cached ({path})")
    else:
        rows = [row for fold in ctx.folds for row in fold_rows(ctx, fold)]
        results_io.write_csv(path, COLUMNS, [[r[c] for c in COLUMNS] for r in rows])
    print_table(rows)
    return rows


def read_rows(path):
    import pandas as pd
    return [dict(r, clips=int(r["clips"]), correct=int(r["correct"]))
            for r in pd.read_csv(path, dtype={"fold": str, "condition": str}).to_dict("records")]


def fold_rows(ctx, fold):
    """One row a condition: how many of the fold's test clips its model(s) classify right when recorded so."""
    clips = ctx.dataset.test(fold)
    settings = (ctx.members or [ctx])[0].settings
    truth = [ctx.dataset.labels[i] for i in ctx.dataset.target_index(clips)]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for k, (name, condition) in enumerate([(CLEAN, None)] + list(CONDITIONS.items())):
            rng = np.random.default_rng(fold_seed(ctx.params["general"]["seed"], fold) * 100 + k)
            paths = []
            for clip in clips:
                y = read_clip(ctx.dataset.audio_path(clip), settings.fs)
                samples, rate, fmt, subtype = (y, settings.fs, "WAV", "FLOAT") if condition is None else \
                    condition(y, settings.fs, rng)
                paths.append(os.path.join(folder, f"{len(paths)}.{'mp3' if fmt == 'MP3' else 'wav'}"))
                write(paths[-1], samples, rate, fmt, subtype)
            answers = predict_files(ctx, paths, folds=[fold])["files"]
            correct = sum(max(a["scores"], key=a["scores"].get) == t for a, t in zip(answers, truth))
            rows.append({"fold": fold, "condition": name, "clips": len(clips), "correct": int(correct)})
            print(f"  Fold {fold}: {name:<12} {100 * correct / len(clips):5.1f} %", flush=True)
            for p in paths:
                os.remove(p)
    return rows


def summary(rows):
    """{condition: pooled accuracy}, and the mean over the conditions other than the clean one."""
    by = {}
    for r in rows:
        clips, correct = by.get(r["condition"], (0, 0))
        by[r["condition"]] = (clips + r["clips"], correct + r["correct"])
    accuracy = {name: correct / clips for name, (clips, correct) in by.items()}
    others = [a for name, a in accuracy.items() if name != CLEAN]
    return accuracy, float(np.mean(others)) if others else float("nan")


def print_table(rows):
    accuracy, mean = summary(rows)
    clean = accuracy.get(CLEAN, float("nan"))
    print(f"   {'Recorded':<14} {'Accuracy':>9} {'Change':>8}")
    print("   " + "-" * 33)
    for name, a in accuracy.items():
        change = "" if name == CLEAN else f"{100 * (a - clean):+7.1f}"
        print(f"   {name:<14} {100 * a:8.1f}% {change:>8}")
    print("   " + "-" * 33)
    print(f"   {'mean of the changed recordings':<24} {100 * mean:.1f} %")
