"""A user's dataset and machine as they are: damaged caches, a full disk, odd files and names, --predict
before training, long recordings and mistyped flags, through the command line."""
import glob
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import yaml

from conftest import ROOT, built_once, make_dataset, write_meta
from test_bad_input import ODD_FILES, tone

SCRIPT = os.path.join(ROOT, "task_esc50.py")


def run(args, cwd, script=SCRIPT):
    return subprocess.run([sys.executable, script] + args, cwd=cwd, capture_output=True, text=True, timeout=600)


def quick(dataset, app, *extra):
    return ["--dataset_path", dataset, "--set", "quick", "--param", "learner.epochs=3",
            "--param", f"path.application={app}", *extra]


def final_numbers(app):
    data = yaml.safe_load(open(glob.glob(os.path.join(app, "evaluator", "quick_*", "results.yaml"))[0]))
    return data["overall"], data["class_wise"]


def one_error_line(result):
    """A user mistake: exit status 2 and one line on stderr that starts with Error:."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return built_once(tmp_path_factory, "robust_dataset",
                      lambda root: make_dataset(root, n_classes=3, n_folds=2, per_fold=3, seconds=1.0))


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    """The folder of an uninterrupted, undamaged run, which the tests copy rather than train again."""
    def train(app):
        result = run(quick(dataset, app), ROOT)
        assert result.returncode == 0, result.stderr
    return built_once(tmp_path_factory, "robust_trained", train)


@pytest.fixture(scope="module")
def reference(trained):
    """The numbers of an uninterrupted, undamaged run."""
    return final_numbers(trained)


def copy_of(trained, app):
    """A trained run's folder at another path: every cache in it still counts (no path is in a hash)."""
    shutil.copytree(trained, app, dirs_exist_ok=True)
    return app


def damage(path, how):
    data = open(path, "rb").read()
    if how == "truncate":
        open(path, "wb").write(data[:len(data) // 2])
    else:
        middle = bytearray(data)
        middle[len(data) // 2] ^= 0xFF
        open(path, "wb").write(bytes(middle))


def test_damaged_caches_are_found_said_and_computed_again(dataset, trained, reference, tmp_path):
    app = copy_of(trained, str(tmp_path / "system"))
    feature = sorted(glob.glob(f"{app}/features/*/*.npy"))[0]
    damage(feature, "flip")
    damage(glob.glob(f"{app}/normalization/*/norm_fold_2.npz")[0], "truncate")
    damage(glob.glob(f"{app}/recognizer/*/res_fold_2.csv")[0], "truncate")
    open(glob.glob(f"{app}/evaluator/quick_*/results.yaml")[0], "w").write("set_id: quick\noverall: {acc")
    shown = run(["--show_results", "--param", f"path.application={app}"], ROOT)
    assert shown.returncode == 0 and "(unreadable)" in shown.stdout and "results.yaml: not valid YAML" in shown.stdout
    again = run(quick(dataset, app), ROOT)
    assert again.returncode == 0, again.stderr
    assert "1 cached file(s) are damaged" in again.stdout and os.path.basename(feature) in again.stdout
    assert "norm_fold_2.npz is damaged; fitting it again" in again.stdout
    assert final_numbers(app) == reference

    model = glob.glob(f"{app}/learner/*/model_fold_2.keras")[0]
    damage(model, "truncate")
    line = one_error_line(run(quick(dataset, app, "--predict", os.path.join(dataset, "audio")), ROOT))
    assert f"The model {model} is damaged" in line
    again = run(quick(dataset, app), ROOT)
    assert again.returncode == 0, again.stderr
    assert f"the cached model {model} is damaged" in again.stdout and "training it again" in again.stdout
    assert final_numbers(app) == reference


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs (mounting needs root, as CI runs)."""
    folder = tmp_path / "small"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(folder)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def fill(folder, leave_kb):
    stat = os.statvfs(folder)
    free = stat.f_bavail * stat.f_frsize
    with open(folder / "ballast", "wb") as f:
        f.write(bytes(max(free - leave_kb * 1024, 0)))


@pytest.mark.parametrize("leave_kb, where", [(200, "features"), (300, "learner"), (8, "evaluator")])
def test_a_full_disk_is_one_sentence_and_the_next_run_continues(dataset, trained, reference, small_disk, leave_kb,
                                                               where):
    app = small_disk / "system"
    if where != "features":  # the stages before `where` are done with room to spare
        copy_of(trained, app)
        for stage in ("learner", "recognizer", "evaluator")[("learner", "evaluator").index(where) * 2:]:
            shutil.rmtree(app / stage)
    fill(small_disk, leave_kb)
    line = one_error_line(run(quick(dataset, app), ROOT))
    assert f"The disk holding {app}/{where}" in line and "is full" in line
    assert not [p for p in small_disk.rglob(".tmp-*")]
    os.remove(small_disk / "ballast")
    again = run(quick(dataset, app), ROOT)
    assert again.returncode == 0, again.stderr
    assert final_numbers(str(app)) == reference


def test_a_dataset_of_odd_files_names_and_folds_runs(tmp_path):
    """Every audio format a user may have, names with spaces and accents, and folds named by text."""
    root = tmp_path / "odd"
    (root / "audio" / "sub dir").mkdir(parents=True)
    (root / "meta").mkdir()
    rng = np.random.default_rng(0)
    rows, names = [], [name for name, _write, _tol in ODD_FILES] + ["short clip é.wav", "sub dir/long ü.wav"]
    writers = [write for _name, write, _tol in ODD_FILES] + [
        lambda p, y: sf.write(p, y[:2205], 44100, subtype="PCM_16"),   # 0.05 s
        lambda p, y: sf.write(p, np.tile(y, 36), 44100, subtype="PCM_16")]  # 3 minutes
    for i, (name, write) in enumerate(zip(names, writers)):
        target = i % 3
        y = 0.3 * np.sin(2 * np.pi * 400 * 1.5 ** target * np.arange(220500) / 44100) + 0.01 * rng.standard_normal(220500)
        write(str(root / "audio" / name), y)
        rows.append({"filename": name, "fold": "AB"[i % 2], "target": f"{target}.0", "category": f"class {target}"})
    write_meta(str(root), rows)
    app = tmp_path / "system"
    result = run(["--dataset_path", str(root), "--set", "quick", "--param", "learner.epochs=2",
                  "--param", f"path.application={app}", "--folds", "A,B"], ROOT)
    assert result.returncode == 0, result.stderr
    assert "9 clips ready" in result.stdout and "folds A, B; active fold(s): A, B" in result.stdout
    # quick's own active fold is the last (B): this run of A and B has a results folder of its own
    data = yaml.safe_load(open(glob.glob(f"{app}/evaluator/quick_*/folds_A_B/results.yaml")[0]))
    assert data["folds"] == ["A", "B"] and set(data["folds_results"]) == {"A", "B"}
    assert sorted(os.path.basename(p) for p in glob.glob(f"{app}/recognizer/*/*.csv")) == ["res_fold_A.csv",
                                                                                          "res_fold_B.csv"]


def test_predict_before_training_and_before_conversion(dataset, trained, tmp_path):
    app = str(tmp_path / "system")
    audio = os.path.join(dataset, "audio")
    line = one_error_line(run(quick(dataset, app, "--predict", audio), ROOT))
    assert "has no trained keras model" in line
    assert f"run python task_esc50.py --set quick --dataset_path {dataset}" in line  # the user's own flags
    copy_of(trained, app)
    line = one_error_line(run(quick(dataset, app, "--predict", audio, "--predict_format", "int8"), ROOT))
    assert "has no trained int8 model" in line
    assert f"run python task_esc50_tflite.py --set quick --dataset_path {dataset}" in line
    empty = tmp_path / "no_audio"
    empty.mkdir()
    (empty / "notes.txt").write_text("nothing to hear")
    line = one_error_line(run(quick(dataset, app, "--predict", str(empty)), ROOT))
    assert f"--predict {empty} holds no audio files" in line


def peak_memory_mb(args):
    """The peak resident memory of the command line run in a child process, in MB."""
    code = ("import resource, runpy, sys\n"
            f"sys.argv = [{SCRIPT!r}] + {args!r}\n"
            "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
            "finally:\n    print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return int(result.stderr.split("PEAK")[-1].split()[0]) / 1024, result.stdout


def test_predict_reads_a_long_recording_in_bounded_memory(dataset, trained, tmp_path):
    app = copy_of(trained, str(tmp_path / "system"))
    # two minutes (24 windows) and ten (120): the same batch shapes, so TensorFlow's own memory is alike;
    # reading the whole file would add 85 MB of float32 samples for the eight minutes more
    short, long = str(tmp_path / "two_minutes.wav"), str(tmp_path / "ten_minutes.wav")
    sf.write(short, tone(120, 44100), 44100, subtype="PCM_16")
    sf.write(long, tone(600, 44100), 44100, subtype="PCM_16")
    short_peak, _ = peak_memory_mb(quick(dataset, app, "--predict", short))
    long_peak, out = peak_memory_mb(quick(dataset, app, "--predict", long))
    assert " 600.0s  120 " in out
    assert long_peak - short_peak < 30, (short_peak, long_peak)


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "Error: Unknown command line flag 'bogus'; run with --help to see the flags."),
    (["--top_k", "0", "--set", "quick"], "Error: flag --top_k=0: 0 is not a positive integer; run with --help"),
    (["--set", "quick", "--param", "learner.batch_size=0"], "Error: learner.batch_size is 0 in set 'quick'"),
])
def test_command_line_mistakes_are_one_sentence(tmp_path, args, message):
    assert one_error_line(run(args, tmp_path)).startswith(message)
