#!/usr/bin/env python
"""Start-up: how long `task_esc50.py --help` and `--show_sets` take, against a bare Python start and an
`import tensorflow`, each the median of several runs in fresh processes.

    python benchmarks/bench_startup.py [--runs 5]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

from _common import ROOT, machine


def median_seconds(command, runs):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    runs = p.parse_args().runs
    script = os.path.join(ROOT, "task_esc50.py")
    bare = median_seconds([sys.executable, "-c", "pass"], runs)
    rows = [("python -c pass (floor)", bare),
            ("python -c 'import tensorflow'", median_seconds([sys.executable, "-c", "import tensorflow"], runs)),
            ("task_esc50.py --help", median_seconds([sys.executable, script, "--help"], runs)),
            ("task_esc50.py --show_sets", median_seconds([sys.executable, script, "--show_sets"], runs))]
    print(f"Machine: {machine()}; median of {runs} runs")
    print(f"{'command':<34} {'seconds':>8} {'x floor':>8}")
    for name, seconds in rows:
        print(f"{name:<34} {seconds:>8.2f} {seconds / bare:>8.1f}")
    import_tf = rows[1][1]
    for name, seconds in rows[2:]:
        print(f"{name}: {'under' if seconds < 2 else 'OVER'} 2 s, {import_tf / seconds:.1f}x faster than importing TensorFlow")


if __name__ == "__main__":
    main()
