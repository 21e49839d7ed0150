"""What users actually do wrong, through the command line: each case runs a task script as a user would and checks
the answer. A user error must be one sentence on stderr ("Error: ...", naming what is at fault) with exit status 2
and no traceback; a case that should work must exit 0. Prints a table of the cases and their verdicts.

    python tools/probe_bad_input.py --dataset_path /data/ESC-50-master     # on real clips (a few minutes)

The test suite runs the same cases on a small synthetic dataset (tests/test_probe_bad_input.py). The scratch copies a
case needs (CSVs, parameter files) are made under a temporary folder, with links to the dataset's audio.
"""
import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASK = os.path.join(ROOT, "task_esc50.py")
SIZE = os.path.join(ROOT, "model_size_calculation.py")


@dataclass
class Case:
    name: str
    family: str
    args: object  # (Scratch) -> [arguments], or a shell command line (str) when it pipes
    expect: str = "error"  # error: one sentence, exit 2 | ok: exit 0 | no-traceback: any exit, no traceback
    says: tuple = ()  # what the answer must say (stderr for an error, both streams otherwise)
    script: str = TASK


@dataclass
class Scratch:
    """The dataset under test and a folder for the copies that cases make."""
    dataset: str
    folder: str
    made: dict = field(default_factory=dict)

    def app(self):
        return ["--param", f"path.application={os.path.join(self.folder, 'runs')}"]

    def rows(self):
        with open(os.path.join(self.dataset, "meta", "esc50.csv"), newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    def dataset_with(self, name, change):
        """A copy of the dataset whose CSV rows are `change(rows)`, its audio linked, not copied."""
        root = os.path.join(self.folder, name)
        if name not in self.made:
            os.makedirs(os.path.join(root, "meta"))
            os.symlink(os.path.join(os.path.abspath(self.dataset), "audio"), os.path.join(root, "audio"))
            rows = change(self.rows())
            with open(os.path.join(root, "meta", "esc50.csv"), "w", newline="", encoding="utf-8") as f:
                fields = list(rows[0]) if rows else ["filename", "fold", "target", "category"]
                writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
            self.made[name] = root
        return root

    def params_file(self, name, edit=None, text=None, encoding="utf-8"):
        """A parameter file: the shipped one edited (as text) or `text` as given."""
        path = os.path.join(self.folder, name)
        with open(os.path.join(ROOT, "task_esc50.yaml"), encoding="utf-8") as f:
            content = text if text is not None else f.read()
        if edit:
            content = edit(content)
        with open(path, "w", encoding=encoding) as f:
            f.write(content)
        return path

    def file(self, name, data):
        path = os.path.join(self.folder, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def other_folds(self):
        """Every fold label of the CSV but its first row's."""
        rows = self.rows()
        return sorted({r["fold"] for r in rows} - {rows[0]["fold"]})

    def a_clip(self):
        return os.path.join(self.dataset, "audio", self.rows()[0]["filename"])


def _first_fold_only(rows):
    first = rows[0]["fold"]
    return [r for r in rows if r["fold"] == first]


def _one_class(rows):
    return [r for r in rows if r["target"] == rows[0]["target"]]


def _rename(rows, old, new):
    return [{(new if k == old else k): v for k, v in r.items()} for r in rows]


def _no_esc10(rows):
    return [dict(r, esc10="False") for r in rows]


def _absolute(rows):
    return [dict(rows[0], filename="/etc/passwd")] + rows[1:]


def _climbing(rows):
    return [dict(rows[0], filename="../meta/esc50.csv")] + rows[1:]


def _drop_key(key):
    """A parameter file of an older version: one setting's line (and its comment lines) taken out."""
    def edit(text):
        lines = text.splitlines(keepends=True)
        i = next(i for i, line in enumerate(lines) if line.lstrip().startswith(key + ":") and line.startswith("    "))
        j = i + 1
        while j < len(lines) and lines[j].lstrip().startswith("#") and lines[j].startswith(" " * 20):
            j += 1
        return "".join(lines[:i] + lines[j:])
    return edit


QUICK = ["--set", "quick"]

CASES = [
    # settings whose type or shape is wrong
    Case("fmax not a number", "settings", lambda s: QUICK + ["--param", "feature_extractor.fmax=abc", "--show_sets"],
         says=("feature_extractor.fmax",)),
    Case("fmax negative", "settings", lambda s: QUICK + ["--param", "feature_extractor.fmax=-5", "--show_sets"],
         says=("feature_extractor.fmax",)),
    Case("a section given as a mapping keeps its other keys", "settings",
         lambda s: QUICK + ["--param", "learner.augmentation={time_shift: 5}", "--show_sets"], expect="ok"),
    Case("a whole section's few keys", "settings", lambda s: ["--param", "learner={epochs: 3}", "--show_sets"],
         expect="ok"),
    Case("an empty --set", "settings", lambda s: ["--set", "", "--show_sets"], says=("--set is empty",)),
    Case("an unknown --set", "settings", lambda s: ["--set", "quik", "--show_sets"], says=("did you mean 'quick'",)),
    Case("epochs 0", "settings", lambda s: QUICK + ["--param", "learner.epochs=0", "--show_sets"],
         says=("learner.epochs",)),
    Case("epochs a word", "settings", lambda s: QUICK + ["--param", "learner.epochs=abc", "--show_sets"],
         says=("learner.epochs",)),
    Case("an unknown key", "settings", lambda s: ["--param", "learner.epoch=3", "--show_sets"],
         says=("did you mean 'learner.epochs'",)),
    Case("active_folds true", "settings", lambda s: ["--param", "general.active_folds=true", "--show_sets"],
         says=("general.active_folds",)),
    Case("unfreeze negative", "settings", lambda s: ["--param", "learner.fine_tuning.unfreeze=-1", "--show_sets"],
         says=("learner.fine_tuning.unfreeze",)),
    Case("families a number", "settings", lambda s: ["--param", "learner.families=5", "--show_sets"],
         says=("learner.families",)),
    Case("a fold the dataset lacks", "settings", lambda s: QUICK + ["--dataset_path", s.dataset, "--folds", "9"]
         + s.app(), says=("9",)),
    Case("a column that is not in the CSV", "settings", lambda s: QUICK + ["--dataset_path", s.dataset, "--param",
                                                                        "dataset.columns={filename: nope}"] + s.app(),
         says=("nope", "dataset.columns")),
    Case("a file pattern with an unknown field", "settings",
         lambda s: QUICK + ["--dataset_path", s.dataset, "--param", "dataset.file_pattern=x{split}/{filename}"]
         + s.app(), says=("dataset.file_pattern",)),
    # parameter files
    Case("an older parameter file lacking a setting", "parameter files",
         lambda s: ["--params_file", s.params_file("old.yaml", _drop_key("print_tables")), "--show_sets"],
         expect="ok", says=("lacks 1 setting(s)", "tflite.print_tables")),
    Case("a parameter file in Latin-1", "parameter files",
         lambda s: ["--params_file", s.params_file("latin.yaml", lambda t: "# Réglages\n" + t, encoding="latin-1"),
                    "--show_sets"], says=("not UTF-8",)),
    Case("a parameter file that is a folder", "parameter files", lambda s: ["--params_file", s.folder, "--show_sets"],
         says=("is a folder",)),
    Case("a parameter file that does not exist", "parameter files",
         lambda s: ["--params_file", os.path.join(s.folder, "none.yaml"), "--show_sets"], says=("does not exist",)),
    Case("a parameter file of broken YAML", "parameter files",
         lambda s: ["--params_file", s.params_file("broken.yaml", text="sets: [\n  - set_id: a\n defaults: {"),
                    "--show_sets"], says=("not valid YAML",)),
    Case("an unknown top-level key", "parameter files",
         lambda s: ["--params_file", s.params_file("top.yaml", lambda t: t + "\nextra: 1\n"), "--show_sets"],
         says=("extra",)),
    Case("a default of the wrong type", "parameter files",
         lambda s: ["--params_file", s.params_file("type.yaml", lambda t: t.replace("    epochs: 200", "    epochs: many",
                                                                                    1)), "--show_sets"],
         says=("epochs",)),
    # degenerate datasets
    Case("an esc10 subset of a CSV without ESC-10 rows", "datasets",
         lambda s: QUICK + ["--dataset_path", s.dataset_with("no_esc10", _no_esc10), "--param",
                            "dataset.subset=esc10"] + s.app(), says=("esc10",)),
    Case("a dataset of one class", "datasets",
         lambda s: QUICK + ["--dataset_path", s.dataset_with("one_class", _one_class)] + s.app(),
         says=("one class",)),
    Case("a dataset of one fold", "datasets",
         lambda s: QUICK + ["--dataset_path", s.dataset_with("one_fold", _first_fold_only)] + s.app(),
         says=("no clip to train on",)),
    Case("validation holding every other fold", "datasets",
         lambda s: QUICK + ["--dataset_path", s.dataset, "--folds", s.rows()[0]["fold"], "--param",
                            f"learner.validation_folds=[{','.join(s.other_folds())}]"] + s.app(),
         says=("learner.validation_folds", "leaves no fold to train on")),
    Case("a CSV with a header only", "datasets",
         lambda s: QUICK + ["--dataset_path", s.dataset_with("header_only", lambda rows: [])] + s.app(),
         says=("no rows",)),
    Case("a --dataset_path that is a file", "datasets", lambda s: QUICK + ["--dataset_path", s.a_clip()] + s.app(),
         says=("is a file",)),
    Case("a --dataset_path that does not exist", "datasets",
         lambda s: QUICK + ["--dataset_path", os.path.join(s.folder, "none")] + s.app(), says=("does not exist",)),
    Case("a CSV without its target column", "datasets",
         lambda s: QUICK + ["--dataset_path", s.dataset_with("no_target", lambda r: _rename(r, "target", "label"))]
         + s.app(), says=("target",)),
    # rows that point outside the audio folder
    Case("an absolute filename", "rows outside", lambda s: QUICK + ["--dataset_path", s.dataset_with("abs", _absolute)]
         + s.app(), says=("not inside the audio folder",)),
    Case("a filename that climbs out", "rows outside",
         lambda s: QUICK + ["--dataset_path", s.dataset_with("climb", _climbing)] + s.app(),
         says=("not inside the audio folder",)),
    Case("a file pattern that climbs out", "rows outside",
         lambda s: QUICK + ["--dataset_path", s.dataset, "--param", "dataset.file_pattern=../{filename}"] + s.app(),
         says=("not inside the audio folder",)),
    # outputs that cannot be written as planned, and inputs that are not there
    Case("--detect_output an existing file", "outputs",
         lambda s: QUICK + ["--dataset_path", s.dataset, "--detect", s.a_clip(), "--detect_output", s.a_clip()]
         + s.app(), says=("is a file",)),
    Case("--detect a missing file", "outputs", lambda s: QUICK + ["--dataset_path", s.dataset, "--detect",
                                                                  os.path.join(s.folder, "none.wav")] + s.app(),
         says=("does not exist",)),
    Case("--predict a folder of no audio", "outputs",
         lambda s: QUICK + ["--dataset_path", s.dataset, "--predict", os.path.dirname(s.file("notes/a.txt", b"x"))]
         + s.app(), says=("holds no audio files",)),
    Case("--predict a missing file", "outputs", lambda s: QUICK + ["--dataset_path", s.dataset, "--predict",
                                                                   os.path.join(s.folder, "none.wav")] + s.app(),
         says=("does not exist",)),
    Case("--predict with an untrained set", "outputs",
         lambda s: QUICK + ["--dataset_path", s.dataset, "--predict", s.a_clip()] + s.app(),
         says=("no trained keras model", "--dataset_path")),
    Case("--final with --folds", "outputs",
         lambda s: QUICK + ["--dataset_path", s.dataset, "--final", "--folds", "1"] + s.app(),
         says=("leave out --folds",)),
    Case("--predict - with nothing piped in", "outputs",
         lambda s: f"{sys.executable} {TASK} --predict - --param path.application={s.folder}/runs < /dev/null",
         says=("read no audio",)),
    Case("--predict - with a window of 0 s", "outputs",
         lambda s: ["--predict", "-", "--window_seconds", "0"] + s.app(), says=("--window_seconds",)),
    Case("--predict - with odd bytes for 2 channels", "outputs",
         lambda s: f"printf abc | {sys.executable} {TASK} --predict - --channels 2 "
                   f"--param path.application={s.folder}/runs",
         says=("--channels",)),
    Case("--show_results before any run", "outputs", lambda s: ["--show_results"] + s.app(), expect="ok",
         says=("No evaluated sets",)),
    Case("--compare with an unknown set", "outputs",
         lambda s: QUICK + ["--dataset_path", s.dataset, "--compare", "quik"] + s.app(), says=("quik",)),
    Case("--compare with an unknown format", "outputs",
         lambda s: QUICK + ["--dataset_path", s.dataset, "--compare", "quick:int4"] + s.app(), says=("int4",)),
    Case("--predict_format unknown", "outputs", lambda s: QUICK + ["--predict_format", "int4", "--predict", "x"],
         says=("int4",)),
    # the size command
    Case("size of text named .keras", "size command", lambda s: [s.file("text.keras", b"not a model")],
         script=SIZE, says=("not a whole .keras file",)),
    Case("size of random bytes named .tflite", "size command",
         lambda s: [s.file("random.tflite", bytes(range(256)) * 40)], script=SIZE, says=("not a TFLite model",)),
    Case("size of a zip that is no model", "size command",
         lambda s: [s.file("zip.keras", _zip_of_text())], script=SIZE, says=("not a Keras model",)),
    Case("size of a folder", "size command", lambda s: [s.folder], script=SIZE, says=("is a folder",)),
    Case("size of a missing file", "size command", lambda s: [os.path.join(s.folder, "none.keras")], script=SIZE,
         says=("does not exist",)),
    Case("size --help", "size command", lambda s: ["--help"], script=SIZE, expect="ok", says=("python",)),
    # pipes and help
    Case("--show_sets into head", "pipes", lambda s: f"{sys.executable} {TASK} --show_sets | head -n 2",
         expect="no-traceback"),
    Case("--help into head", "pipes", lambda s: f"{sys.executable} {TASK} --help | head -n 2", expect="no-traceback"),
    Case("--help", "pipes", lambda s: ["--help"], expect="ok", says=("--dataset_path",)),
]


def _zip_of_text():
    import io
    import zipfile
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("config.json", "{}")
    return buffer.getvalue()


def run_case(case, scratch):
    """(passed, exit status, the first line of what it said)."""
    args = case.args(scratch)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    if isinstance(args, str):
        done = subprocess.run(["bash", "-o", "pipefail", "-c", args], capture_output=True, text=True, timeout=600,
                              cwd=scratch.folder, env=env)
    else:
        done = subprocess.run([sys.executable, case.script] + args, capture_output=True, text=True, timeout=600,
                              cwd=scratch.folder, env=env)
    err = done.stderr
    errors = [line for line in err.splitlines() if line.startswith("Error: ")]
    said = errors[0] if errors else (err.strip().splitlines() or done.stdout.strip().splitlines() or [""])[-1]
    if "Traceback" in err:
        return False, done.returncode, said
    if case.expect == "error":
        ok = done.returncode == 2 and len(errors) == 1 and all(s in errors[0] for s in case.says)
    elif case.expect == "ok":
        ok = done.returncode == 0 and all(s in done.stdout + err for s in case.says)
    else:
        ok = True
    return ok, done.returncode, said


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset_path", required=True, help="an ESC-50-layout folder (audio/, meta/esc50.csv)")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="probe-")
    scratch = Scratch(os.path.abspath(args.dataset_path), folder)
    failed = 0
    print(f"{'family':<16} {'case':<50} {'verdict':<7} exit  answer")
    try:
        for case in CASES:
            ok, status, said = run_case(case, scratch)
            failed += not ok
            print(f"{case.family:<16} {case.name[:50]:<50} {'ok' if ok else 'WRONG':<7} {status:>4}  {said[:150]}",
                  flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{len(CASES) - failed} of {len(CASES)} cases answered as they should")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
