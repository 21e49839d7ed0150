"""general.fold_processes: the active folds trained by child processes of the same command, each on cores of
its own, their output marked with their folds; a failure named in one sentence; an interrupt stops them all."""
import glob
import os
import signal
import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml

from conftest import ROOT, make_dataset
from esc50_baseline.run import fold_processes
from esc50_baseline.errors import UserError

SCRIPT = os.path.join(ROOT, "task_esc50.py")


def test_the_folds_and_the_cores_are_dealt_out_in_turn():
    assert fold_processes.plan([1, 2, 3, 4, 5], 2, {1, 0}) == [([1, 3, 5], [0]), ([2, 4], [1])]
    assert fold_processes.plan([1, 2, 3], 2, {0, 1, 2, 3}) == [([1, 3], [0, 2]), ([2], [1, 3])]
    assert fold_processes.plan([1, 2], 4, {0, 1, 2, 3}) == [([1], [0, 2]), ([2], [1, 3])]  # no more than folds
    assert fold_processes.plan([1, 2, 3], 3, {0, 1}) == [([1], None), ([2], None), ([3], None)]  # too few cores
    command = fold_processes.child_command(["task_esc50.py", "--set", "x", "--folds", "1,2"], [2, 4], 1)
    assert command[:6] == [sys.executable, "task_esc50.py", "--set", "x", "--folds", "1,2"]
    assert command[6:] == ["--folds", "2,4", "--param", "general.fold_processes=1", "--param", "general.workers=1"]


def cpu_reporter():
    return [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning two children needs two cores")
def test_each_child_runs_on_its_own_cores_and_its_lines_are_marked(capfd):
    cores = sorted(os.sched_getaffinity(0))[:2]
    failed = fold_processes._run_children([([1, 3], [cores[0]], cpu_reporter()), ([2], [cores[1]], cpu_reporter())])
    assert failed == []
    lines = capfd.readouterr().out.splitlines()
    assert sorted(lines) == sorted([f"[folds 1,3] [{cores[0]}]", f"[folds 2] [{cores[1]}]"])


def fake_run(folds, processes=2, overwrite=False):
    return SimpleNamespace(folds=folds, params={"general": {"fold_processes": processes, "overwrite": overwrite}})


def test_a_child_that_fails_is_named_in_one_sentence_after_the_others_finish(capfd):
    # the children are `python -c CODE --folds K ...`: CODE sees its folds in sys.argv
    code = ("import sys, time; folds = sys.argv[sys.argv.index('--folds') + 1]; time.sleep(0.5 if folds == '1' else 0);"
            " print('done', folds); sys.exit(2 if folds == '2' else 0)")
    with pytest.raises(UserError) as raised:
        fold_processes.run(fake_run([1, 2]), argv=["-c", code])
    out = capfd.readouterr().out
    assert "[folds 1] done 1" in out and "[folds 2] done 2" in out  # fold 1 went on to its end
    message = str(raised.value)
    assert message.startswith("The process of fold 2 stopped with exit status 2") and "[folds 2]" in message
    assert message.endswith("what the processes finished is cached.")


def test_a_child_killed_by_a_signal_is_named_so(capfd):
    code = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    with pytest.raises(UserError, match=r"^The process of fold 1 was killed by signal 9 \(its lines above are marked"):
        fold_processes.run(fake_run([1, 2]), argv=["-c", code])


def test_zero_means_one_process_per_core(capfd):
    cores = len(os.sched_getaffinity(0))
    code = "print('child')"
    started = fold_processes.run(fake_run([1, 2, 3, 4, 5, 6, 7, 8][:max(cores, 2)], processes=0), argv=["-c", code])
    out = capfd.readouterr().out
    assert started is (cores > 1)
    assert out.count("child") == (min(cores, 8) if cores > 1 else 0)


def test_one_process_does_when_there_is_nothing_to_share_out(capfd):
    never = ["-c", "raise SystemExit(9)"]  # a child would fail
    assert fold_processes.run(fake_run([1, 2], processes=1), argv=never) is False
    assert fold_processes.run(fake_run([3]), argv=never) is False
    assert fold_processes.run(fake_run([1, 2], overwrite=True), argv=never) is False
    assert "general.overwrite is on: the folds run in this one process" in capfd.readouterr().out


def test_sigterm_stops_every_child(tmp_path):
    """A parent with the run's signal handling (Ctrl-C and SIGTERM alike) is stopped while its two children
    sleep: it stops them, waits for them, and ends as interrupted."""
    pids = tmp_path / "pids"
    sleeper = [sys.executable, "-c", f"import os, time; open('{pids}', 'a').write(f'{{os.getpid()}}\\n'); "
               "print('started', flush=True); time.sleep(300)"]
    parent_code = (f"import sys; sys.path.insert(0, {ROOT!r})\n"
                   "from esc50_baseline import interrupts\nfrom esc50_baseline.run import fold_processes\n"
                   "interrupts.install()\n"
                   f"try: fold_processes._run_children([([1], None, {sleeper!r}), ([2], None, {sleeper!r})])\n"
                   "except KeyboardInterrupt as e: print('interrupted by', e.args[0], flush=True)\n")
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seen = []
    for line in parent.stdout:  # until both children have started
        seen.append(line)
        if sum("started" in s for s in seen) == 2:
            break
    parent.send_signal(signal.SIGTERM)
    rest = parent.communicate(timeout=60)[0]
    assert f"interrupted by {int(signal.SIGTERM)}" in rest, "".join(seen) + rest
    children = [int(p) for p in pids.read_text().split()]
    assert len(children) == 2
    for pid in children:  # each one stopped and reaped
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_two_fold_processes_train_the_folds_then_the_run_evaluates_both(tmp_path):
    dataset = str(tmp_path / "d")
    make_dataset(dataset, n_classes=3, n_folds=2, per_fold=4, seconds=1.0)
    app = tmp_path / "app"
    run = subprocess.run([sys.executable, SCRIPT, "--dataset_path", dataset, "--set", "quick", "--param",
                          "learner.epochs=2", "--param", "general.active_folds=all", "--param", "flow.sed_evaluation=false",
                          "--param", f"path.application={app}", "--param", "general.fold_processes=2"],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    lines = run.stdout.splitlines()
    own = [line for line in lines if not line.startswith("[folds ")]
    assert any(line.startswith("  2 processes (general.fold_processes: 2): fold 1") for line in own)
    for fold in (1, 2):  # each child trained its own fold, and only that one
        theirs = [line for line in lines if line.startswith(f"[folds {fold}] ")]
        assert any(f"Fold {fold}: trained in" in line for line in theirs), "\n".join(theirs)
        assert not any(f"Fold {3 - fold}: trained" in line for line in theirs)
        assert any(f"active fold(s): {fold}" in line for line in theirs)
    # the run itself then trained nothing: both models came from the cache, and it evaluated both folds
    assert sum("trained model cached" in line for line in own) == 2 and not any("Epoch 1/" in line for line in own)
    assert any("2-fold cross-validation: accuracy" in line for line in own)
    results = yaml.safe_load(open(glob.glob(f"{app}/evaluator/quick_*/results.yaml")[0]))
    assert results["folds"] == [1, 2] and results["cross_validation"]["folds"] == 2
