"""Classify sounds on a small device with an exported raw-audio model (raw_int8, raw_float32): LiteRT, numpy,
soundfile and soxr only, no TensorFlow. Copy this file, the model and its labels.txt to the device.

    pip install ai-edge-litert numpy soundfile soxr
    python classify_on_device.py model_fold_1_raw_int8.tflite labels.txt recording.wav
    arecord -f S16_LE -r 16000 -c 1 | python classify_on_device.py MODEL labels.txt - --rate 16000

A file is cut into windows of the model's length (5 s), the last, shorter one zero-padded; each window's top labels
are printed, then the file's (the mean over its windows). `-` reads raw 16-bit mono PCM at --rate from standard
input and prints each window's labels as soon as the window is full.
"""
import argparse
import sys

import numpy as np

MODEL_RATE = 44100  # the rate the exported models take (feature_extractor.fs of the set that made them)


def load(model_path, shifts=(0,)):
    """(run(samples) -> probabilities, samples a window): the mean over the time shifts (in feature frames) of the
    set's testing.time_shifts, which the model rolls its own features by."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    interpreter = Interpreter(model_path=model_path)
    interpreter.allocate_tensors()
    plain = Interpreter(model_path=model_path,  # without the delegate, which would call the last operator DELEGATE
                        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    last = plain.get_output_details()[0]["index"]
    ends_in_softmax = any(op["op_name"] == "SOFTMAX" for op in plain._get_ops_details() if last in op["outputs"])
    inputs = interpreter.get_input_details()
    audio = next(d for d in inputs if d["dtype"] != np.int32)
    shift = next((d for d in inputs if d["dtype"] == np.int32), None)  # how far to roll its features
    output = interpreter.get_output_details()[0]

    def once(samples, frames):
        interpreter.set_tensor(audio["index"], samples.reshape(audio["shape"]).astype(np.float32))
        if shift is not None:
            interpreter.set_tensor(shift["index"], np.full(shift["shape"], frames, np.int32))
        interpreter.invoke()
        y = interpreter.get_tensor(output["index"])[0].astype(np.float64)
        if np.issubdtype(output["dtype"], np.integer):
            scale, zero = output["quantization"]
            y = (y - zero) * scale
        if ends_in_softmax:  # probabilities already
            return np.clip(y, 0.0, None) / max(np.clip(y, 0.0, None).sum(), 1e-12)
        z = np.exp(y - y.max())  # logits
        return z / z.sum()

    return (lambda samples: np.mean([once(samples, frames) for frames in shifts], axis=0)), int(np.prod(audio["shape"]))


def resampled(samples, rate):
    if rate == MODEL_RATE:
        return samples
    import soxr
    return soxr.resample(samples, rate, MODEL_RATE).astype(np.float32)


def file_windows(path, n):
    import soundfile
    samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
    samples = resampled(samples.mean(axis=1), rate)
    starts = range(0, max(len(samples), 1), n)
    return [np.pad(samples[s:s + n], (0, n - len(samples[s:s + n]))) for s in starts
            if s == 0 or len(samples) - s >= n // 5]  # a last window of under a fifth is left out


def stream_windows(stream, rate, n):
    """Windows of `n` samples at the model's rate from raw 16-bit PCM at `rate`, as the bytes arrive."""
    need = int(np.ceil(n * rate / MODEL_RATE)) * 2
    while True:
        data = stream.read(need)
        if len(data) < need // 5:  # the end: a last window of under a fifth is left out
            return
        pcm = np.frombuffer(data[:len(data) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
        window = resampled(pcm, rate)[:n]
        yield np.pad(window, (0, n - len(window)))
        if len(data) < need:
            return


def top(probabilities, labels, k):
    return ", ".join(f"{labels[i]} {probabilities[i]:.2f}" for i in np.argsort(-probabilities)[:k])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a raw-audio .tflite model (raw_int8 or raw_float32)")
    parser.add_argument("labels", help="labels.txt: one class a line, in the model's order")
    parser.add_argument("audio", help="an audio file, or - for raw 16-bit mono PCM on standard input")
    parser.add_argument("--rate", type=int, default=16000, help="the sample rate of standard input's PCM")
    parser.add_argument("--top", type=int, default=3, help="labels shown per window")
    parser.add_argument("--shifts", default="0", help="time shifts in feature frames to average over, e.g. the set's "
                        "testing.time_shifts: -100,-75,-50,-25,0,25,50,75,100 (slower: one run a shift)")
    args = parser.parse_args()
    with open(args.labels, encoding="utf-8") as f:
        labels = [line.strip() for line in f if line.strip()]
    run, n = load(args.model, [int(s) for s in args.shifts.split(",")])
    windows = stream_windows(sys.stdin.buffer, args.rate, n) if args.audio == "-" else file_windows(args.audio, n)
    scores = []
    for i, window in enumerate(windows):
        scores.append(run(window))
        print(f"window {i + 1} ({i * n / MODEL_RATE:.1f} s): {top(scores[-1], labels, args.top)}", flush=True)
    if scores and args.audio != "-":
        print(f"{args.audio}: {top(np.mean(scores, axis=0), labels, args.top)}")


if __name__ == "__main__":
    main()
