"""Make the model shipped in the repository (pretrained/SET/) again: the set's final model on every clip of ESC-50,
trained and converted by `task_esc50.py --final`, copied beside its settings and a model card that states how it
was made, what it is expected to score (the set's five-fold figures, from docs/five_fold.md), how its int8 files
agree with the float model on the clips, and the SHA-256 of every file.

    python tools/ship_model.py --dataset_path /data/ESC-50-master            # the active set
    python tools/ship_model.py --dataset_path /data/ESC-50-master --set cnn3

Run it again whenever the active set changes. Training resumes from the cache like any run.
"""
import argparse
import datetime
import hashlib
import os
import re
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tools"))

from esc50_baseline import config, results_io  # noqa: E402
from esc50_baseline.data.dataset import FINAL  # noqa: E402
from esc50_baseline.run import setup, shipped  # noqa: E402

SHIPPED_FORMATS = ("int8", "raw_int8")  # beside the Keras model: a feature model for devices, a raw one for Python
LICENCE = """The network learnt from ESC-50 (K. J. Piczak, "ESC: Dataset for Environmental Sound Classification", ACM
Multimedia 2015), whose clips come from freesound.org under Creative Commons Attribution-NonCommercial 3.0
(CC BY-NC 3.0). Whether a trained model is a derivative work of its training data is unsettled; this model is
shipped on the terms of its data: use it for non-commercial purposes and credit ESC-50 as above. A commercial
product needs a model trained on data whose licence allows that (`task_esc50.py --final` on your own dataset)."""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset_path", required=True, help="ESC-50 in its release layout (audio/, meta/esc50.csv)")
    parser.add_argument("--set", default=None, help="the set to ship (default: the active set)")
    parser.add_argument("--param", action="append", default=[], help="a YAML setting, key.path=value (repeatable)")
    parser.add_argument("--out_of_domain", default=None, help="out_of_domain.csv of a run of the set's recipe with "
                        "flow.out_of_domain (its test clips recorded otherwise), for the card")
    args = parser.parse_args()
    options = SimpleNamespace(params_file=config.parameters.SHIPPED, set=args.set, param=args.param, overwrite=False,
                              dataset_path=args.dataset_path, folds=None, final=True)
    parameters, params = setup.load_parameters(options)
    set_id = params["set_id"]
    command = ["task_esc50.py", "--final", "--set", set_id] + [w for p in args.param for w in ("--param", p)]
    subprocess.run([sys.executable, *command, "--dataset_path", args.dataset_path], cwd=ROOT, check=True)
    ctx = setup.prepare_run(parameters, params, options, quiet=True)
    folder = shipped.shipped_folder(set_id)
    staging = folder + ".new"  # made whole beside the shipped folder, then put in its place
    copy_files(ctx, params, staging)
    checks = agreement(params, ctx, staging)
    card = model_card(ctx, params, staging, command, checks, args.out_of_domain)
    results_io.atomic_write_text(os.path.join(staging, shipped.CARD_FILE), card)
    if os.path.exists(folder):
        os.rename(folder, folder + ".old")
    os.rename(staging, folder)
    shutil.rmtree(folder + ".old", ignore_errors=True)
    print(card)


def copy_files(ctx, params, staging):
    """The final model's files (under their cache names) and settings.yaml, into `staging`."""
    from esc50_baseline.models import model_files
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    # float32 and without the optimizer's state, which only training needs (a third of the file)
    model = model_files.as_float32(model_files.load_model(ctx.model_path(FINAL)))
    model.save(os.path.join(staging, os.path.basename(ctx.model_path(FINAL))))
    for source in [ctx.norm_path(FINAL), ctx.labels_path()] + [ctx.tflite_path(FINAL, f) for f in SHIPPED_FORMATS]:
        shutil.copyfile(source, os.path.join(staging, os.path.basename(source)))
    kept = {k: v for k, v in params.items() if k not in ("path", "flow")}
    results_io.write_yaml(os.path.join(staging, shipped.SETTINGS_FILE),
                          {"set_id": params["set_id"], "settings_hash": shipped.model_settings_hash(params),
                           "parameters": kept})


def agreement(params, ctx, folder):
    """How the shipped files classify every clip of the dataset (through the shipped folder, as --predict reads it):
    each format's top-1 share and its agreement with the Keras model. The clips are the model's training clips:
    this checks the conversion, it estimates nothing."""
    from esc50_baseline.data.audio import read_clip
    from esc50_baseline.stages.predict import set_scorer
    mine, why_not = shipped.shipped_context(params, folder)
    if mine is None:
        raise SystemExit(f"The shipped folder does not answer for set {params['set_id']}: {why_not}")
    s = ctx.settings
    clips = ctx.dataset.clips
    samples = np.stack([read_clip(ctx.dataset.audio_path(c), s.fs, s.n_samples) for c in clips])
    truth = ctx.dataset.target_index(clips)
    predicted = {}
    for fmt in ("keras",) + SHIPPED_FORMATS:
        scorer = set_scorer(mine, fmt, [FINAL])[0]
        predicted[fmt] = np.concatenate([scorer(samples[i:i + 64]) for i in range(0, len(samples), 64)]).argmax(1)
    return {fmt: {"clips": len(clips), "top1": float(np.mean(p == truth)),
                  "agreement": float(np.mean(p == predicted["keras"]))} for fmt, p in predicted.items()}


def five_fold(set_id):
    """The set's five-fold rows of docs/five_fold.md: [(row name, mean, std)], Keras first, then int8."""
    from results_figure import FIVE_FOLD, five_fold_rows, read
    rows = [(name, mean, std) for name, _folds, mean, std in five_fold_rows(read(FIVE_FOLD))
            if name.split(",")[0] == set_id]
    return rows[:2]


def machine():
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    model = re.search(r"model name\s*:\s*(.+)", flags)
    kind = next((k for k in ("amx_bf16", "avx512f", "avx2") if re.search(rf"\b{k}\b", flags)), "other")
    names = {"amx_bf16": "AMX", "avx512f": "AVX-512", "avx2": "AVX2 only", "other": "no AVX2"}
    return f"{model.group(1).strip() if model else 'unknown CPU'} ({names[kind]}), {os.cpu_count()} cores"


def commit():
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return head + (" (with uncommitted changes)" if dirty else "")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def training(ctx):
    from esc50_baseline.training.trainer import training_seconds
    seconds, _timed, epochs = training_seconds(ctx.history_path(FINAL))
    return f"{epochs} epochs in {seconds / 60:.0f} min of training"


def name(path):
    return os.path.basename(path)


def out_of_domain_lines(path):
    """The card's lines on recordings unlike ESC-50's: each condition's accuracy in a run of the recipe."""
    if not path:
        return ("Recordings unlike ESC-50's (phone microphones, low sample rates, lossy codecs, reverberant rooms) "
                "score lower.")
    from esc50_baseline.stages.out_of_domain import CLEAN, read_rows, summary
    rows = read_rows(path)
    accuracy, mean = summary(rows)
    folds = sorted({str(r["fold"]) for r in rows})
    table = "\n".join(f"| {name} | {100 * a:.1f} % |" for name, a in accuracy.items())
    return f"""Recordings unlike ESC-50's score lower. A network of the same recipe, tested on the clips of fold(s)
{', '.join(folds)} recorded otherwise (each written as a file and classified as `--predict` does;
`flow.out_of_domain`), scored {100 * mean:.1f} % on average over those recordings, against {100 * accuracy[CLEAN]:.1f} %
on the clips as recorded:

| Recorded | Accuracy |
|---|---|
{table}"""


def model_card(ctx, params, folder, command, checks, out_of_domain=None):
    from esc50_baseline.models.complexity import keras_file_report
    from esc50_baseline.tflite.size import tflite_size_report
    total = keras_file_report(ctx.model_path(FINAL))["total"]
    int8_bytes = tflite_size_report(ctx.tflite_path(FINAL, "int8"))["total"]["bytes"]
    s = ctx.settings
    estimate = five_fold(params["set_id"])
    estimate_lines = [f"- {name}: **{mean:.1f} +- {std:.1f} %** over the five folds" for name, mean, std in estimate]
    if not estimate_lines:
        estimate_lines = ["- none recorded in docs/five_fold.md: run the set's five folds before relying on it"]
    files = sorted(name for name in os.listdir(folder) if name != shipped.CARD_FILE)
    sums = "\n".join(f"{sha256(os.path.join(folder, name))}  {name}" for name in files)
    checked = "\n".join(f"| {fmt} | {100 * c['agreement']:.1f} % | {100 * c['top1']:.1f} % |"
                        for fmt, c in checks.items())
    learner = params["learner"]
    return f"""# Model card: `{params['set_id']}`, trained on all of ESC-50

{params['description']}.

## Use

```
python task_esc50.py --predict recording.wav                          # the Keras model
python task_esc50.py --predict recording.wav --predict_format raw_int8 # LiteRT alone, no TensorFlow
```

`task_esc50.py` uses this model when the set `{params['set_id']}` has no model of your own (your `--final` model,
or your fold models, take precedence) and says so in its output.

## What to expect

The network was trained on every clip, so no clip is left to test it on: its accuracy is that of the same recipe in
five-fold cross-validation (each fold's model trained on the other four folds, from scratch, no external data):

{chr(10).join(estimate_lines)}

{out_of_domain_lines(out_of_domain)}

- **Input**: audio of any sample rate and channel count, resampled to {s.fs} Hz mono and cut into
  {s.n_samples / s.fs:g} s windows (a recording's windows are averaged; a shorter one is padded).
- **Output**: a probability for each of the {len(ctx.dataset.labels)} ESC-50 classes (`labels.txt`, in output
  order). It has no "none of these": any sound gets the nearest of those classes, so a low top probability is the
  only sign that a sound is none of them.
- **Size**: {total['params']:,} parameters, {total['macs'] / 1e6:.1f} M multiply-accumulates a window; the int8
  model is {int8_bytes / 1024:.1f} KB by the DCASE count (the low-complexity limits are 128 KB and 30 M).

## Files

- `{name(ctx.model_path(FINAL))}`: the Keras model (float32); `{name(ctx.norm_path(FINAL))}`: the mean and
  standard deviation its log-mel input is normalised with.
- `{name(ctx.tflite_path(FINAL, 'int8'))}`: full-integer TFLite (normalised log-mel in, as the Keras
  model), for microcontrollers; `{name(ctx.tflite_path(FINAL, 'raw_int8'))}`: the same network with the
  front end inside (16-bit-range samples at {s.fs} Hz in), for LiteRT anywhere (`examples/classify_on_device.py`).
- `labels.txt`: the class names; `{shipped.SETTINGS_FILE}`: the set's settings and their hash.

SHA-256 (`sha256sum -c` reads these lines; `tests/test_shipped_model.py` checks them):

```
{sums}
```

## How it was made

- Command: `python {' '.join(command)} --dataset_path ESC-50` (ESC-50's release folder), by
  `python tools/ship_model.py --dataset_path ESC-50`
- Commit: {commit()}
- Machine: {machine()}; made {datetime.date.today().isoformat()}; {training(ctx)}
- Recipe: `{learner['model']}`, {learner['epochs']} epochs, seed {params['general']['seed']}; everything else in
  `{shipped.SETTINGS_FILE}`.

Checked on the {checks['keras']['clips']} ESC-50 clips through this folder (its training clips: a check of the
conversion, not an estimate of accuracy):

| Format | Same class as Keras | Top-1 on its training clips |
|---|---|---|
{checked}

## Licence of the data, and what it means for the model

{LICENCE}
"""


if __name__ == "__main__":
    main()
