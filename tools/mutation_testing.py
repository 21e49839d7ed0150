"""Mutation testing of the modules that carry the project's promises, with mutmut 3.

mutmut changes one thing at a time in a module (a comparison, a constant, a call's argument) and runs the
tests that reach that code; a mutant that no test notices ("survived") is a behaviour the suite does not
pin down. This is a tool, not part of CI: a full run takes about an hour on two cores.

    pip install mutmut==3.8.1
    python tools/mutation_testing.py                      # the working tree's code and tests
    python tools/mutation_testing.py --commit ea0721c     # the code and tests of an older commit
    python tools/mutation_testing.py --modules atomic     # some of the modules (names below)

The run happens in a temporary copy (mutmut writes a `mutants/` folder beside the code), so the checkout
is never touched. It prints, per module, mutants killed / survived / not reached by the selected tests /
timed out, and the score (killed + timed out) / all, and lists the survivors with their diffs in
`--report` (default mutation_report.txt).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from esc50_baseline import atomic  # noqa: E402

# module name -> (source file, the tests that exercise it, mutant-name pattern or None = all). Tests that run
# a task script in a subprocess are left out (SUBPROCESS_TESTS): mutmut cannot follow a mutant there.
MODULES = {
    "spectrogram_augmentation": ("esc50_baseline/features/spectrogram_augmentation.py",
                                 ["tests/test_augmentation.py"], None),
    "waveform_augmentation": ("esc50_baseline/features/waveform_augmentation.py",
                              ["tests/test_waveform_augmentation.py"], None),
    "atomic": ("esc50_baseline/atomic.py",
               ["tests/test_damaged_files.py", "tests/test_training.py::test_model_saved_atomically_and_reloads",
                "tests/test_parallel_folds.py", "tests/test_features.py"], None),
    "normalization": ("esc50_baseline/features/normalization.py", ["tests/test_dataset.py"], None),
    "metrics": ("esc50_baseline/evaluation/metrics.py", ["tests/test_evaluation.py"], None),
    # the checkpoint's own tests, not every training test that writes one (a minute a mutant)
    "checkpoint": ("esc50_baseline/training/trainer.py",
                   ["tests/test_training.py::test_checkpoint_round_trip_restores_model_optimizer_and_state",
                    "tests/test_training.py::test_checkpoint_of_another_optimizer_is_not_restored",
                    "tests/test_training.py::test_a_finished_fold_s_checkpoint_is_removed",
                    "tests/test_damaged_files.py::test_a_damaged_checkpoint_means_training_starts_over"],
                   "*Checkpoint*"),
    # the tests on a tiny network; the rest of test_tflite.py trains and converts a model first (half a
    # minute a mutant), so a score with these alone is a lower bound
    "tflite_evaluation": ("esc50_baseline/tflite/run.py",
                          ["tests/test_tflite_run.py", "tests/test_tflite_micro.py",
                           "tests/test_tflite.py::test_quantize_dequantize_by_hand"], None),
}

SUBPROCESS_TESTS = "not script_end_to_end and not two_processes"
STATUS = re.compile(r"^\s*(\S+__mutmut_\d+): (\w[\w ]*)$")


def export(commit, into):
    """The tree of `commit` (or the working tree when None) copied into `into`."""
    if commit is None:  # the files git would see: tracked or new, not ignored (no caches, no results)
        listed = subprocess.run(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                check=True, capture_output=True, text=True).stdout
        for name in filter(None, listed.split("\0")):
            if os.path.exists(os.path.join(ROOT, name)):
                os.makedirs(os.path.dirname(os.path.join(into, name)) or into, exist_ok=True)
                shutil.copy2(os.path.join(ROOT, name), os.path.join(into, name))
        return
    archive = subprocess.run(["git", "-C", ROOT, "archive", commit], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)


def write_config(folder, names):
    sources = sorted({MODULES[n][0] for n in names})
    # an older commit may lack some of today's tests
    tests = sorted({t for n in names for t in MODULES[n][1] if exists(folder, t)})
    with open(os.path.join(folder, "setup.cfg"), "w") as f:
        f.write("[mutmut]\nsource_paths=esc50_baseline\n")
        f.write("only_mutate=\n" + "".join(f"    {s}\n" for s in sources))
        f.write("also_copy=\n    task_esc50.py\n    task_esc50_tflite.py\n    utils.py\n    task_esc50.yaml\n"
                "    model_size_calculation.py\n    pytest.ini\n")
        f.write("pytest_add_cli_args_test_selection=\n" + "".join(f"    {t}\n" for t in tests))
        f.write(f"pytest_add_cli_args=\n    -p\n    no:cacheprovider\n    -x\n    -k\n    {SUBPROCESS_TESTS}\n")
        f.write("process_isolation=forkserver\n")
        # mutmut's CPU-time limit counts a test's own time, not its fixtures': a test whose module first converts
        # a model (TensorFlow's threads) would otherwise be stopped and its mutant counted as a timeout
        f.write("timeout_constant=30\n")


def exists(folder, test):
    """Whether a test file, or a test function given as file::name, is in the tree at `folder`."""
    path, _, name = test.partition("::")
    if not os.path.exists(os.path.join(folder, path)):
        return False
    with open(os.path.join(folder, path)) as f:
        return not name or f"def {name}(" in f.read()


def module_of(mutant, names):
    for name in names:
        source, _tests, pattern = MODULES[name]
        dotted = source[:-3].replace("/", ".")
        if mutant.startswith(dotted + ".") and (pattern is None or re.fullmatch(
                pattern.replace("*", ".*"), mutant[len(dotted) + 1:])):
            return name
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commit", help="test this commit's code with its own tests (default: the working tree)")
    parser.add_argument("--modules", default=",".join(MODULES), help=f"comma-separated, from: {', '.join(MODULES)}")
    parser.add_argument("--report", default="mutation_report.txt", help="where to list the surviving mutants")
    parser.add_argument("--keep", help="run in this folder and keep it (resumable), instead of a temporary one")
    args = parser.parse_args()
    names = [n.strip() for n in args.modules.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        sys.exit(f"Unknown module {unknown[0]!r} in --modules; choose from {', '.join(MODULES)}.")
    if shutil.which("mutmut") is None:
        sys.exit("mutmut is not installed; run `pip install mutmut==3.8.1` and try again.")
    folder = args.keep or tempfile.mkdtemp(prefix="mutation-")
    os.makedirs(folder, exist_ok=True)
    if not os.path.exists(os.path.join(folder, "setup.cfg")):
        export(args.commit, folder)
        write_config(folder, names)
    patterns = [MODULES[n][0][:-3].replace("/", ".") + "." + (MODULES[n][2] or "*") for n in names]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run(["mutmut", "run"] + patterns, cwd=folder, env=env)
    listing = subprocess.run(["mutmut", "results", "--all", "true"], cwd=folder, env=env, capture_output=True,
                             text=True).stdout
    counts, survivors = {}, []
    for line in listing.splitlines():
        match = STATUS.match(line)
        if not match:
            continue
        mutant, status = match.groups()
        name = module_of(mutant, names)
        if name is None:
            continue
        counts.setdefault(name, {}).setdefault(status, 0)
        counts[name][status] += 1
        if status in ("survived", "no tests"):
            survivors.append((mutant, status))
    print(f"\nMutation testing of {'the working tree' if args.commit is None else args.commit}")
    print(f"  {'module':<26}{'mutants':>8}{'killed':>8}{'survived':>9}{'no tests':>9}{'timeout':>8}{'score':>8}")
    total = {}
    for name in names:
        c = counts.get(name, {})
        for k, v in c.items():
            total[k] = total.get(k, 0) + v
        print(row(name, c))
    print(row("all", total))
    report = "".join(f"## {mutant} ({status})\n" + subprocess.run(["mutmut", "show", mutant], cwd=folder, env=env,
                                                                  capture_output=True, text=True).stdout + "\n"
                     for mutant, status in survivors)
    atomic.write_text(args.report, report)  # a killed run leaves the old report, never half of a new one
    print(f"  {len(survivors)} surviving or unreached mutants, with their diffs: {args.report}")
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


def row(name, c):
    n = sum(c.values())
    caught = c.get("killed", 0) + c.get("timeout", 0)
    score = f"{100 * caught / n:.1f}%" if n else "-"
    return (f"  {name:<26}{n:>8}{c.get('killed', 0):>8}{c.get('survived', 0):>9}{c.get('no tests', 0):>9}"
            f"{c.get('timeout', 0):>8}{score:>8}")


if __name__ == "__main__":
    main()
