"""The active folds trained side by side: `general.fold_processes` child processes of the same command, each
on its own folds and its own share of the CPU cores, sharing path.application's caches.

Training is compute-bound and the small networks cannot keep several cores busy from one process: one process
per core trained low_complexity's folds 1.38x as fast as one process on two cores (README, "Speed"). The
children are the same command with `--folds` of their own, one feature-extraction worker per core they have,
and fold_processes 1; their output comes through with each line marked by its folds. The caches are safe to
share (claims, atomic writes, a lock per fold's training), so once the children are done the calling run
goes through its own flow, finds every fold cached and evaluates them together.
"""
import os
import signal
import subprocess
import sys
import threading
import time

from ..errors import UserError


def plan(folds, processes, cpus):
    """[(folds, cpus or None)] for each child: the folds dealt out in turn (1, 3, 5 and 2, 4), the cores
    likewise; with fewer cores than children none is pinned."""
    n = min(processes, len(folds))
    return [(folds[i::n], sorted(cpus)[i::n] if len(cpus) >= n else None) for i in range(n)]


def child_command(argv, folds, workers):
    """The command line of a child: this run's own, for `folds`, in one process of its own."""
    return [sys.executable, *argv, "--folds", ",".join(map(str, folds)), "--param", "general.fold_processes=1",
            "--param", f"general.workers={workers}"]


def named(folds):
    return ("folds " if len(folds) > 1 else "fold ") + ", ".join(map(str, folds))


def describe(children):
    parts = [named(folds) + (f" on CPU {', '.join(map(str, cpus))}" if cpus else "") for folds, cpus in children]
    pinned = "" if children[0][1] else " (more processes than CPU cores: none pinned)"
    return "; ".join(parts) + pinned


def usable_cpus():
    """The CPU cores this process may run on (every core where the system cannot tell: macOS, Windows)."""
    if hasattr(os, "sched_getaffinity"):
        return os.sched_getaffinity(0)
    return set(range(os.cpu_count() or 1))


def run(ctx, argv=None):
    """Run the active folds of `ctx` in `general.fold_processes` child processes and wait for them. Returns
    False (nothing done) when one process would do: one fold, one process, or --overwrite, which would make
    every child recompute the caches they share."""
    cpus = usable_cpus()
    processes = ctx.params["general"]["fold_processes"] or len(cpus)  # 0: one per core
    if processes < 2 or len(ctx.folds) < 2:
        return False
    if ctx.params["general"]["overwrite"]:
        print("  general.overwrite is on: the folds run in this one process (general.fold_processes applies to runs "
              "that reuse the caches)")
        return False
    from ..progress import section
    children = plan(list(ctx.folds), processes, cpus)
    section("Fold processes")
    print(f"  {len(children)} processes (general.fold_processes: {ctx.params['general']['fold_processes']}): "
          f"{describe(children)}; each line of theirs is marked with its folds", flush=True)
    started = time.monotonic()
    argv = sys.argv if argv is None else argv
    failed = _run_children([(folds, cores, child_command(argv, folds, len(cores) if cores else 1))
                            for folds, cores in children])
    if failed:
        folds, status = failed[0]
        how = f"was killed by signal {-status}" if status < 0 else f"stopped with exit status {status}"
        raise UserError(f"The process of {named(folds)} {how} (its "
                        f"lines above are marked [folds {','.join(map(str, folds))}]); fix what it names and run the "
                        "same command again: what the processes finished is cached.")
    print(f"  {len(children)} processes done in {(time.monotonic() - started) / 60:.1f} min; every fold together:",
          flush=True)
    return True


def _run_children(children):
    """Start every child, pass its lines on marked with its folds, wait for all; [(folds, exit status)] of those
    that failed. A Ctrl-C or SIGTERM here stops the children too (each keeps what it finished), then goes on up."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    running = []
    try:
        for folds, cpus, command in children:
            child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
            if cpus and hasattr(os, "sched_setaffinity"):  # before the child's interpreter starts a thread; every
                # later thread inherits the mask (where the system cannot pin, the children share every core)
                os.sched_setaffinity(child.pid, cpus)
            running.append((folds, child))
        lock = threading.Lock()
        readers = [threading.Thread(target=_pass_on, args=(child.stdout, f"[folds {','.join(map(str, folds))}] ", lock),
                                    daemon=True) for folds, child in running]
        for reader in readers:
            reader.start()
        statuses = [child.wait() for _folds, child in running]
        for reader in readers:
            reader.join()
    except KeyboardInterrupt:
        for _folds, child in running:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for _folds, child in running:
            child.wait()
        raise
    return [(folds, status) for (folds, _child), status in zip(running, statuses) if status != 0]


def _pass_on(stream, mark, lock):
    """Each line of a child's output, marked; all of it is read even once this run's own output is gone (a
    closed pipe), so that a child never blocks on a full one."""
    for line in stream:
        with lock:
            try:
                sys.stdout.write(mark + line)
                sys.stdout.flush()
            except (OSError, ValueError):
                pass
