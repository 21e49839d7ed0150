"""Kill the command line at several moments, run it again, and get the numbers of an uninterrupted run."""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import yaml

from conftest import ROOT, make_dataset

SCRIPT = os.path.join(ROOT, "task_esc50.py")


def command(dataset, app_dir):
    return [sys.executable, SCRIPT, "--dataset_path", dataset, "--set", "quick", "--param", "learner.epochs=8",
            "--param", "general.active_folds=all", "--param", f"path.application={app_dir}"]


def final_numbers(app_dir):
    path = next((app_dir / "evaluator").glob("quick_*/results.yaml"))
    data = yaml.safe_load(path.read_text())
    return data["overall"], data["folds_results"], data["class_wise"]


def uninterrupted(tmp_path, make_command, n_folds):
    """A small dataset, and the numbers' reference: one uninterrupted run of the command on it, in tmp_path/a."""
    dataset = str(tmp_path / "d")
    make_dataset(dataset, n_classes=3, n_folds=n_folds, per_fold=3, seconds=2.0)
    straight = subprocess.run(make_command(dataset, tmp_path / "a"), capture_output=True, text=True, timeout=900)
    assert straight.returncode == 0, straight.stderr
    return dataset


def test_killed_runs_resume_to_the_same_numbers(tmp_path):
    dataset = uninterrupted(tmp_path, command, n_folds=2)

    app = tmp_path / "b"
    # 1: killed early (start-up or feature extraction)
    process = subprocess.Popen(command(dataset, app), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2.0)
    process.kill()
    process.wait()
    # 2: killed mid-training, as soon as an epoch's checkpoint exists
    process = subprocess.Popen(command(dataset, app), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list(app.glob("learner/*/checkpoint_fold_*.npz")) and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before a checkpoint was seen"
    process.kill()
    process.wait()
    final = subprocess.run(command(dataset, app), capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    assert "resuming from the checkpoint" in final.stdout
    assert final_numbers(app) == final_numbers(tmp_path / "a")
    # the resumed fold's training time counts the epochs of the killed run too
    assert re.search(r"trained in \d+ s \(over every run: \d+ s in 8 epochs\)", final.stdout)
    timing = yaml.safe_load(next((app / "evaluator").glob("quick_*/results.yaml")).read_text())["training_seconds"]
    assert {f: (t["timed_epochs"], t["epochs"]) for f, t in timing.items()} == {1: (8, 8), 2: (8, 8)}
    leftovers = [p for p in app.rglob("*") if p.name.startswith(".tmp-") or p.name.startswith("checkpoint_")]
    assert not leftovers


TFLITE_SCRIPT = os.path.join(ROOT, "task_esc50_tflite.py")


def tflite_command(dataset, app_dir):
    return [sys.executable, TFLITE_SCRIPT, "--dataset_path", dataset, "--set", "quick",
            "--param", "learner.epochs=3", "--param", "learner.augmentation.waveform.copies=2",
            "--param", "tflite.formats=[float32, float16, dynamic_int8, int8]",
            "--param", "flow.tflite_micro=false", "--param", f"path.application={app_dir}"]


def tflite_numbers(app_dir):
    """Everything but the latency: each format's predictions and the comparison's accuracy and log loss."""
    files = sorted(app_dir.glob("tflite/*/res_fold_*.csv")) + sorted(app_dir.glob("recognizer/*/res_fold_*.csv"))
    comparison = next(app_dir.glob("evaluator/quick_*/tflite_comparison.csv")).read_text().splitlines()
    return [f.read_text() for f in files], [",".join(row.split(",")[:6]) for row in comparison]


def interrupt_when(command, ready, sig):
    """Start the command, send `sig` as soon as `ready()` holds, and return its exit status and stderr."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:  # files: a full pipe stops a run
        # Ctrl-C as in a terminal: a shell's background job inherits SIGINT ignored, and so would the run
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 300
        while not ready() and process.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert process.poll() is None, "the run ended before the moment to interrupt it"
        process.send_signal(sig)
        process.wait(timeout=120)
        out.seek(0)
        err.seek(0)
        return process.returncode, err.read() + "\n--- stdout ---\n" + out.read()[-3000:]


def test_sigterm_in_feature_extraction_and_ctrl_c_in_conversion_resume_to_the_same_numbers(tmp_path):
    dataset = uninterrupted(tmp_path, tflite_command, n_folds=2)

    app = tmp_path / "b"

    def copies():  # finished copies, not a claim on making one (.claim-NAME.npy) nor a temporary file
        return [p for p in app.glob("features_augmented/*/*.npy") if not p.name.startswith(".")]
    status, err = interrupt_when(tflite_command(dataset, app), copies, signal.SIGTERM)
    assert status == 128 + signal.SIGTERM and "Interrupted; finished work is cached" in err
    assert 0 < len(copies()) < 18, "the extraction was not cut off in the middle"
    assert not [p for p in app.rglob("*") if p.name.startswith((".tmp-", ".claim-"))]  # the workers' too
    status, err = interrupt_when(tflite_command(dataset, app), lambda: list(app.glob("tflite/*/*.tflite")),
                                 signal.SIGINT)
    assert status == 128 + signal.SIGINT and "Interrupted; finished work is cached" in err, (status, err[-3000:])
    assert len(list(app.glob("tflite/*/*.tflite"))) < 4, "the conversion was not cut off in the middle"
    final = subprocess.run(tflite_command(dataset, app), capture_output=True, text=True, timeout=900)
    assert final.returncode == 0, final.stderr
    assert tflite_numbers(app) == tflite_numbers(tmp_path / "a")
    assert not [p for p in app.rglob("*") if p.name.startswith(".tmp-")]


def test_an_interrupted_run_exits_without_waiting_for_the_teardown():
    """Interrupted, the command leaves at once with its status: finished work is on disk, and the
    interpreter's teardown may wait on work in flight (TensorFlow's input pipeline did, for up to 44 s).
    Here a thread that never ends stands for it; a plain sys.exit would wait for it forever."""
    program = (f"import sys, threading; sys.path.insert(0, {ROOT!r}); import utils\n"
               "def main(argv):\n"
               "    threading.Thread(target=threading.Event().wait).start()  # not a daemon: teardown joins it\n"
               "    print('finished work', flush=True)\n"
               "    raise KeyboardInterrupt\n"
               "utils.run(main)\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert done.returncode == 128 + signal.SIGINT
    assert done.stdout == "finished work\n" and "Interrupted; finished work is cached" in done.stderr


def test_an_interrupt_that_a_finalizer_swallows_still_stops_the_run_before_its_next_stage():
    """Python handles a signal wherever the main thread is. Inside a __del__ (TensorFlow's and LiteRT's objects
    have them) the KeyboardInterrupt is only printed as "Exception ignored", and the run went on to its end."""
    program = (f"import os, signal, sys; sys.path.insert(0, {ROOT!r}); import task_esc50, utils\n"
               "class Finalized:\n"
               "    def __del__(self):\n"
               "        os.kill(os.getpid(), signal.SIGINT)\n"
               "        sum(range(100000))  # the handler runs here, inside the finalizer\n"
               "def first(ctx):\n"
               "    Finalized()\n"
               "    print('first', flush=True)\n"
               "def second(ctx):\n"
               "    print('second', flush=True)\n"
               "class Ctx:\n"
               "    params = {'flow': {'first': True, 'second': True}}\n"
               "utils.run(lambda argv: task_esc50.run_flow(Ctx, (('first', first), ('second', second))))\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert "Exception ignored" in done.stderr and "KeyboardInterrupt" in done.stderr  # swallowed, as in a real run
    assert done.stdout == "first\n"
    assert done.returncode == 128 + signal.SIGINT and "Interrupted; finished work is cached" in done.stderr
