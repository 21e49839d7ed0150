#!/usr/bin/env python
"""Training cost of parameter sets side by side, and one fold per core against one fold on every core.

    python benchmarks/bench_efficiency.py --dataset_path ~/esc50-dev [--sets vgg7,low_complexity,low_complexity_kd]
        [--fold 4] [--epochs 2] [--parallel_set low_complexity] [--keras_batch_norm] [--xla] [--bf16]
        [--one_per_core] [--repeats 3]

Each set trains through the project's own loop (trainer.train_fold, the set's whole recipe: its model,
batch size, spectrogram augmentation, mixup, optimizer and precision policy) on the normalized features of
one fold's training clips, for one warm-up epoch and `--epochs` timed ones. The cost of a set is its time per
epoch times its epochs; the ratio is against the first set, measured in the same run. Two runs on one machine
differ by about a tenth; with --repeats N every set is measured N times, in rounds (every other one in reverse
order), and each cost is the median of its rounds' ratios, printed with their range. A student (a set with
learner.distillation) trains with its distillation loss on stand-in teacher targets; its teacher's training
comes on top, once for all its students (said under its row). Then the last part: `--parallel_set` trained
by two processes at once, each on its own core with one thread, against one process using every core: the
folds' throughput of the two ways of running a cross-validation on this machine. With --keras_batch_norm
each set also trains with Keras's own batch normalization instead of TensorFlow's fused kernel (which the
project trains with), and the speed-up of the fused one is printed: both runs in the same conditions, one
after the other. With --xla each set also trains with its training step compiled by XLA
(learner.jit_compile, which needs general.deterministic: false), and the speed-up of XLA is printed the
same way. With --bf16 each set also trains in the precision `auto` did not pick for it (`learner.mixed_precision`:
mixed_bfloat16 where the set trains in float32, float32 where `auto` picks bfloat16, as on CPUs with AMX), and
bfloat16's speed-up over float32 is printed: the measurement that decides whether `auto` should pick bfloat16 on
a kind of CPU (the header names the precision of the other columns).
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from _common import ROOT, machine, parser


def fold_features(dataset_path, fold, params):
    """The fold's normalized training features, labels and the normalizer (a steady background mixes before it)."""
    from bench_training import prepared_fold
    _dataset, (x, y), _val, _test, norm = prepared_fold(dataset_path, fold, params)
    return x, y, norm


def samples_per_second(set_id, dataset_path, fold, epochs, threads=0, fused=True, xla=False, precision=None):
    """Train one set's recipe for 1 + `epochs` epochs: (its throughput over the timed ones, clips, the set's
    epochs, its teacher or None). `fused`: batch normalization in TensorFlow's kernel, as do_learning trains;
    `xla`: the training step compiled by XLA, without op determinism (XLA has none for max-pool gradients);
    `precision`: a learner.mixed_precision value instead of the set's ("float32" for false)."""
    from esc50_baseline import config
    from esc50_baseline import runtime
    from esc50_baseline.training import fused_batch_norm, trainer
    from esc50_baseline.models.builder import build_model
    from esc50_baseline.models.complexity import spatial_conv_share
    from bench_training import epoch_timer
    import keras
    import tensorflow as tf
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    params = config.Parameters(os.path.join(ROOT, "task_esc50.yaml")).resolve(set_id)
    x, y, norm = fold_features(dataset_path, fold, params)
    learner = dict(params["learner"], epochs=1 + epochs, verbose=0, jit_compile=xla)
    learner["mixed_precision"] = {None: learner["mixed_precision"], "float32": False}.get(precision, precision)
    n_classes = int(y.max()) + 1
    runtime.setup(0, params["general"]["deterministic"] and not xla, learner["mixed_precision"],
                  lambda: spatial_conv_share(build_model(learner, x.shape[1:], n_classes)))
    model = build_model(learner, x.shape[1:], n_classes)
    model = fused_batch_norm.for_training(model) if fused else model
    timer = epoch_timer()
    teacher = None
    if learner["distillation"]["teacher"]:  # the student's own loss; stand-in targets cost what the teacher's do
        teacher = (np.full((len(x), n_classes), 1.0 / n_classes, np.float32), np.zeros((0, n_classes), np.float32))
    with tempfile.TemporaryDirectory() as logs:
        trainer.train_fold(model, x, y, x[:0], y[:0], n_classes, learner, 0, logs, extra_callbacks=[timer],
                           teacher=teacher, normalizer=norm)
    rate = len(x) / float(np.mean(timer.times[1:]))
    policy = keras.mixed_precision.global_policy().name
    return rate, len(x), params["learner"]["epochs"], learner["distillation"]["teacher"], policy


def child(args):
    """One measurement in a process of its own (for the parallel comparison): prints JSON."""
    rate, n, epochs, teacher, policy = samples_per_second(
        args.child, args.dataset_path, args.fold, args.epochs, args.threads, fused=args.batch_norm == "fused",
        xla=args.xla_child, precision=args.precision)
    print(json.dumps({"rate": rate, "clips": n, "epochs": epochs, "teacher": teacher, "policy": policy}))


def run_child(set_id, args, threads, core=None, batch_norm="fused", xla=False, precision=None):
    command = [sys.executable, os.path.abspath(__file__), "--dataset_path", args.dataset_path, "--child", set_id,
               "--fold", str(args.fold), "--epochs", str(args.epochs), "--threads", str(threads),
               "--batch_norm", batch_norm] + (["--xla_child"] if xla else []) + (
               ["--precision", precision] if precision else [])
    if core is not None:
        command = ["taskset", "-c", str(core)] + command
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def measured(process):
    out, _ = process.communicate()
    return json.loads(out.strip().splitlines()[-1])


def pair_rates(set_id, args):
    """The throughputs of two processes training `set_id` at once, one core and one thread each."""
    return [measured(process)["rate"] for process in [run_child(set_id, args, 1, core) for core in range(2)]]


def measure(set_id, args, round_index, extras):
    """One round's figures of a set: its one-process rate (and clips, epochs, teacher), with --one_per_core the
    pair's rates, and (`extras`, the first round only) the fused-kernel, XLA and bfloat16 speed-ups when asked
    for."""
    m = measured(run_child(set_id, args, 0))
    m["pair"] = pair_rates(set_id, args) if args.one_per_core else None
    if extras and args.keras_batch_norm:
        m["keras_bn"] = m["rate"] / measured(run_child(set_id, args, 0, batch_norm="keras"))["rate"]
    if extras and args.xla:
        m["xla"] = measured(run_child(set_id, args, 0, xla=True))["rate"] / m["rate"]
    if extras and args.bf16:  # the other precision than the one the set trained in above
        if m["policy"] == "mixed_bfloat16":
            m["bf16"] = m["rate"] / measured(run_child(set_id, args, 0, precision="float32"))["rate"]
        else:
            m["bf16"] = measured(run_child(set_id, args, 0, precision="mixed_bfloat16"))["rate"] / m["rate"]
    print(f"  round {round_index + 1} of {args.repeats}: {set_id} measured, {m['rate']:.1f} samples/s"
          + (f", one per core {sum(m['pair']):.1f}" if m["pair"] else ""), flush=True)
    return m


def ratio_columns(costs, set_id, first, spread):
    """The median over rounds of a set's cost against the first set's in the same round (and their range)."""
    ratios = [one[set_id] / one[first] for one in costs]
    return f" {float(np.median(ratios)):>13.2f}x" + (f" {min(ratios):>7.2f}-{max(ratios):.2f}x" if spread else "")


def medians(rounds, set_id):
    """A set's one-process rate and its pair's two rates (None without --one_per_core), medians over the rounds."""
    rate = float(np.median([one[set_id]["rate"] for one in rounds]))
    if rounds[0][set_id]["pair"] is None:
        return rate, None
    return rate, [float(np.median([one[set_id]["pair"][core] for one in rounds])) for core in range(2)]


def print_table(rounds, sets, args):
    spread = args.repeats > 1
    print(f"\n{'set':<18} {'samples/s':>10} {'s/epoch':>8} {'epochs':>7} {'training':>10} {'cost vs first':>14}"
          + (f" {'range':>13}" if spread else "")
          + (f" {'fused BN vs Keras BN':>21}" if args.keras_batch_norm else "")
          + (f" {'XLA vs none':>12}" if args.xla else "")
          + (f" {'bf16 vs fp32':>12}" if args.bf16 else "")
          + (f" {'one per core: samples/s':>23} {'training':>9} {'cost vs first':>14}" if args.one_per_core else "")
          + (f" {'range':>13}" if spread and args.one_per_core else ""))
    costs = [{s: m["clips"] / m["rate"] * m["epochs"] for s, m in one.items()} for one in rounds]
    # two folds advance at once: a fold costs its epochs at the pair's summed rate
    shares = ([{s: m["clips"] / sum(m["pair"]) * m["epochs"] for s, m in one.items()} for one in rounds]
              if args.one_per_core else None)
    for set_id in sets:
        m = rounds[0][set_id]
        (rate, pair), n, epochs = medians(rounds, set_id), m["clips"], m["epochs"]
        row = (f"{set_id:<18} {rate:>10.1f} {n / rate:>8.1f} {epochs:>7} {n / rate * epochs / 60:>8.1f} m"
               + ratio_columns(costs, set_id, sets[0], spread))
        row += f" {m['keras_bn']:>20.2f}x" if args.keras_batch_norm else ""
        row += f" {m['xla']:>11.2f}x" if args.xla else ""
        row += f" {m['bf16']:>11.2f}x" if args.bf16 else ""
        if pair:
            row += (f" {pair[0]:>7.1f} + {pair[1]:>5.1f} = {sum(pair):>5.1f} {n / sum(pair) * epochs / 60:>7.1f} m"
                    + ratio_columns(shares, set_id, sets[0], spread))
        print(row, flush=True)
        if m["teacher"]:
            print(f"{'':<18} (and its teacher {m['teacher']}'s training first, once for all its students)")
    if spread:
        print(f"({args.repeats} rounds, each measuring every set: samples/s are medians; a cost is the median of the "
              f"rounds' ratios to the first set's, with the lowest and highest under 'range')")


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--sets", default="vgg7,low_complexity,low_complexity_kd")
    p.add_argument("--fold", type=int, default=4)
    p.add_argument("--epochs", type=int, default=2, help="timed epochs (after one warm-up epoch)")
    p.add_argument("--parallel_set", default="low_complexity")
    p.add_argument("--repeats", type=int, default=1,
                   help="rounds of measuring every set (every other round in reverse order); medians and ranges")
    p.add_argument("--child", default=None, help=argparse_hidden())
    p.add_argument("--keras_batch_norm", action="store_true",
                   help="also train each set with Keras's own batch normalization: the fused kernel's speed-up")
    p.add_argument("--xla", action="store_true",
                   help="also train each set with its training step compiled by XLA: XLA's speed-up")
    p.add_argument("--bf16", action="store_true",
                   help="also train each set in the other of float32 and mixed_bfloat16: bfloat16's speed-up")
    p.add_argument("--one_per_core", action="store_true",
                   help="also measure each set as two processes at once, one core each: a fold's share of the machine")
    p.add_argument("--xla_child", action="store_true", help=argparse_hidden())
    p.add_argument("--precision", default=None, help=argparse_hidden())
    p.add_argument("--threads", type=int, default=0, help=argparse_hidden())
    p.add_argument("--batch_norm", default="fused", help=argparse_hidden())
    args = p.parse_args()
    if args.child:
        return child(args)
    cores = os.cpu_count() or 1
    if args.repeats < 1:
        p.error(f"--repeats is {args.repeats}; it must be 1 or more.")
    if args.one_per_core and cores < 2:
        p.error(f"--one_per_core needs two cores; this machine has {cores}.")
    print(f"Machine: {machine()}")
    sets = args.sets.split(",")
    rounds = []
    for r in range(args.repeats):  # every other round in reverse order, so a drift of the machine's speed evens out
        rounds.append({set_id: measure(set_id, args, r, extras=r == 0) for set_id in (sets[::-1] if r % 2 else sets)})
    policies = sorted({m["policy"] for one in rounds for m in one.values()})
    print(f"\nPrecision of the columns but the bf16 one: {', '.join(policies)} (learner.mixed_precision of each set)")
    print_table(rounds, sets, args)
    if cores >= 2 and args.parallel_set:
        started = time.perf_counter()
        in_rows = args.one_per_core and args.parallel_set in sets  # its row has both figures already
        one, rates = medians(rounds, args.parallel_set) if in_rows else (
            measured(run_child(args.parallel_set, args, 0))["rate"], pair_rates(args.parallel_set, args))
        took = "measured in its row above" if in_rows else f"{time.perf_counter() - started:.0f} s"
        print(f"\n{args.parallel_set}: one process on all {cores} cores {one:.1f} samples/s; two processes, one core "
              f"and one thread each, {rates[0]:.1f} + {rates[1]:.1f} = {sum(rates):.1f} samples/s together "
              f"({sum(rates) / one:.2f}x; {took})")


def argparse_hidden():
    import argparse
    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
