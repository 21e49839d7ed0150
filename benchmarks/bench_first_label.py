#!/usr/bin/env python
"""Classifying with the shipped model: the time to the first label in a fresh process (the Keras model, against the
raw-audio int8 model with TensorFlow unimportable, as on a small device, and the device example), and the stream's
real-time factor (compute time per second of audio, from each window's decision latency).

    python benchmarks/bench_first_label.py [--dataset_path DIR] [--runs 3] [--stream_seconds 60]

With --dataset_path, the first clip of the dataset is classified; without, a generated recording. Ratios are
against a bare Python start measured in the same run.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from _common import ROOT, machine



def median_seconds(command, runs, env=None, stdin=None):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, env=env, input=stdin)
        times.append(time.perf_counter() - started)
        if done.returncode:
            raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode()[-500:]}")
    return statistics.median(times)


def recording(folder, dataset_path):
    import soundfile as sf
    if dataset_path:
        import csv
        with open(os.path.join(dataset_path, "meta", "esc50.csv")) as f:
            first = next(csv.DictReader(f))["filename"]
        return os.path.join(dataset_path, "audio", first)
    t = np.arange(5 * 44100) / 44100
    path = os.path.join(folder, "tone.wav")
    sf.write(path, 0.3 * np.sin(2 * np.pi * 600 * t), 44100, subtype="PCM_16")
    return path


def stream_factor(fmt, seconds, hop, env):
    """(real-time factor, median latency ms): `seconds` of 16 kHz PCM given at once, a 5 s window every `hop` s."""
    rng = np.random.default_rng(0)
    pcm = (np.clip(0.1 * rng.standard_normal(seconds * 16000), -1, 1) * 32767).astype("<i2").tobytes()
    command = [sys.executable, "task_esc50.py", "--predict", "-", "--rate", "16000", "--hop_seconds", str(hop),
               "--json", "--predict_format", fmt]
    done = subprocess.run(command, cwd=ROOT, input=pcm, capture_output=True, env=env)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode()[-500:]}")
    latencies = [json.loads(line)["latency_ms"] for line in done.stdout.decode().splitlines()]
    return sum(latencies) / 1000 / (hop * len(latencies)), statistics.median(latencies)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset_path", default=None)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--stream_seconds", type=int, default=60)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        without = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "tools", "no_tensorflow"))  # TensorFlow unimportable
        wav = recording(folder, args.dataset_path)
        shipped = os.path.join(ROOT, "pretrained", "low_complexity_fa")
        script = [sys.executable, "task_esc50.py", "--predict", wav]
        bare = median_seconds([sys.executable, "-c", "pass"], args.runs)
        rows = [("python -c pass (floor)", bare),
                ("--predict FILE (Keras)", median_seconds(script, args.runs)),
                ("--predict FILE --predict_format raw_int8, no TensorFlow",
                 median_seconds(script + ["--predict_format", "raw_int8"], args.runs, env=without)),
                ("examples/classify_on_device.py FILE, no TensorFlow",
                 median_seconds([sys.executable, "examples/classify_on_device.py",
                                 os.path.join(shipped, "model_final_raw_int8.tflite"),
                                 os.path.join(shipped, "labels.txt"), wav], args.runs, env=without))]
        print(f"Machine: {machine()}; median of {args.runs} fresh processes each")
        print(f"{'time to the first label':<58} {'seconds':>8} {'x floor':>8} {'x Keras':>8}")
        for name, seconds in rows:
            print(f"{name:<58} {seconds:>8.2f} {seconds / bare:>8.1f} {seconds / rows[1][1]:>8.2f}")
        print(f"\nStream: {args.stream_seconds} s of 16 kHz PCM piped in, a 5 s window every second")
        print(f"{'format':<12} {'real-time factor':>17} {'median latency':>15}")
        for fmt, env in (("keras", None), ("raw_int8", without)):
            factor, latency = stream_factor(fmt, args.stream_seconds, 1.0, env)
            print(f"{fmt:<12} {factor:>17.3f} {latency:>12.1f} ms")
        print("(real-time factor: compute time per second of audio; under 1 keeps up with a live stream)")


if __name__ == "__main__":
    main()
