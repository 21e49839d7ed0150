"""A microcontroller package per fold: the full-integer network as a C array (`model_data.cc/.h`), a header
with everything a device's front end needs to compute this project's features (`model_settings.h`), and the
model checked in TensorFlow Lite Micro's own C++ interpreter (the `tflite-micro` package), which also tells
the tensor arena the model really needs."""
import os
import re
import tempfile

import numpy as np

from .. import atomic
from ..errors import UserError
from .run import quantize

ARENA_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")
MISSING_OP = re.compile(r"Didn't find op for builtin opcode '(\w+)'")
SRAM_BYTES = 256 * 1024  # the SRAM of many target boards, for the report


def unavailable_here():
    """Why TensorFlow Lite Micro's interpreter cannot run on this machine (None when it can, or should: on Linux
    x86_64, where its wheels are, a missing one is an install to make, said by MicroModel)."""
    import importlib.util
    import platform
    if importlib.util.find_spec("tflite_micro") is not None:
        return None
    if (platform.system(), platform.machine()) != ("Linux", "x86_64"):
        return (f"TensorFlow Lite Micro's interpreter (the tflite-micro package) has wheels for Linux x86_64 only, and "
                f"this is {platform.system()} {platform.machine()}; the int8 models are checked with LiteRT above")
    return None


class MicroModel:
    """A .tflite file loaded by TFLM: `raw_output(tensor)` runs one input tensor; `arena_bytes` is what
    TFLM's recording allocator allocated for it."""

    def __init__(self, path):
        try:
            from tflite_micro.python.tflite_micro import runtime as tflm
        except ImportError:
            raise UserError("The microcontroller check needs the tflite-micro package, which is not installed; "
                            "run pip install -r requirements.txt, or set flow.tflite_micro: false.") from None
        data = open(path, "rb").read()
        # room to load (too little crashes it); the recording tells what is used
        arena = max(10 * len(data), 8 * 1024 * 1024)
        with captured_native_output() as log:
            try:
                self.interpreter = tflm.Interpreter.from_bytes(data, arena_size=arena)
                self.interpreter.print_allocations()
                failure = None
            except RuntimeError as error:
                failure = error
        if failure is not None:
            missing = MISSING_OP.search(log.text)
            if missing:
                raise UserError(f"TensorFlow Lite Micro has no kernel for the {missing.group(1)} op of {path}; "
                                "a microcontroller cannot run this model: choose a network without that op.")
            raise UserError(f"TensorFlow Lite Micro cannot load {path} ({failure}: "
                            f"{' '.join(log.text.split()[-30:])}).")
        self.arena_bytes = int(ARENA_TOTAL.search(log.text).group(1))

    def raw_output(self, tensor):
        self.interpreter.set_input(tensor, 0)
        self.interpreter.invoke()
        return self.interpreter.get_output(0)[0].copy()


class captured_native_output:
    """What native code prints (to standard output and error) meanwhile, in `.text` afterwards."""

    def __enter__(self):
        from ..runtime import native_output_to
        self._file = tempfile.TemporaryFile()
        self._redirect = native_output_to(self._file.fileno(), (1, 2))
        self._redirect.__enter__()
        return self

    def __exit__(self, *exc):
        self._redirect.__exit__(*exc)
        self._file.seek(0)
        self.text = self._file.read().decode(errors="replace")
        self._file.close()
        return False


def compare_with_litert(micro, litert, features):
    """Run every clip's features through both interpreters: the largest difference of their integer outputs
    (in steps of the output's scale) and the share of clips where they name the same class."""
    litert_out, micro_out = [], []
    for x in features:
        tensor = litert.input_tensor(x)
        litert_out.append(litert.raw_output(tensor).astype(np.int64))
        micro_out.append(micro.raw_output(tensor).astype(np.int64))
    litert_out, micro_out = np.array(litert_out), np.array(micro_out)
    return {"clips": len(features), "max_step_difference": int(np.abs(litert_out - micro_out).max(initial=0)),
            "agreement": float(np.mean(litert_out.argmax(axis=1) == micro_out.argmax(axis=1))) if len(features)
            else float("nan")}


def c_array(name, data, per_line=16):
    rows = [", ".join(f"0x{b:02x}" for b in data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return (f"alignas(16) const unsigned char {name}[] = {{\n    " + ",\n    ".join(rows) + "\n};\n"
            f"const unsigned int {name}_len = {len(data)};\n")


def _floats(values):
    return ", ".join(f"{float(v):.9g}f" for v in values)


def _escaped(text):
    return str(text).replace("\\", "\\\\").replace('"', '\\"')


def _array(ctype, name, values, formatted):
    return f"static const {ctype} {name}[{len(values)}] = {{{formatted}}};\n"


def settings_header(extractor, normalizer, input_quantization, class_names, arena_bytes):
    """model_settings.h: the front end of `extractor` (a features.extraction.LogMel: framing, window, sparse mel
    rows, log offset), the fold's per-band normalisation, the input tensor's quantization, the class names
    and the arena size."""
    settings = extractor.s
    left = (settings.n_fft - settings.win_length) // 2
    window = extractor.window[left:left + settings.win_length]
    starts, lengths, weights = [], [], []
    for row in extractor.mel_basis:
        nonzero = np.flatnonzero(row)
        first, last = (nonzero[0], nonzero[-1] + 1) if len(nonzero) else (0, 0)
        starts.append(first)
        lengths.append(last - first)
        weights.extend(row[first:last])
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int)
    scale, zero_point = input_quantization
    ints = {"kSampleRate": settings.fs, "kClipSamples": settings.n_samples, "kFftLength": settings.n_fft,
            "kHopLength": settings.hop_length, "kWindowLength": settings.win_length, "kWindowOffset": left,
            "kCenterPadding": settings.n_fft // 2 if settings.center else 0, "kNumMels": settings.n_mels,
            "kNumFrames": settings.n_frames, "kPower": int(settings.power), "kInputZeroPoint": int(zero_point),
            "kNumClasses": len(class_names), "kTensorArenaSize": -(-arena_bytes // 1024) * 1024}
    text = ["// Generated by task_esc50_tflite.py: the front end and input of this fold's int8 model.",
            "// features[m][t] = log(sum_k kMelWeights[kMelOffset[m] + k] * |X_t(kMelStart[m] + k)|^kPower",
            "//                      + kLogOffset), X_t = rfft(kFftLength samples from t * kHopLength of the clip",
            "//                      padded with kCenterPadding zeros at both ends, times the window placed at",
            "//                      kWindowOffset); input[m][t] = round((features[m][t] - kNormMean[m])",
            "//                      / kNormStd[m] / kInputScale) + kInputZeroPoint, saturated to int8.",
            "#ifndef ESC50_MODEL_SETTINGS_H_", "#define ESC50_MODEL_SETTINGS_H_", ""]
    text += [f"static const int {name} = {value};" for name, value in ints.items()]
    text += [f"static const double kLogOffset = {settings.log_offset!r};",
             f"static const float kInputScale = {float(scale):.9g}f;", ""]
    return ("\n".join(text) + "\n"
            + _array("float", "kWindow", window, _floats(window))
            + _array("int", "kMelStart", starts, ", ".join(map(str, starts)))
            + _array("int", "kMelLength", lengths, ", ".join(map(str, lengths)))
            + _array("int", "kMelOffset", offsets, ", ".join(map(str, offsets)))
            + _array("float", "kMelWeights", weights, _floats(weights))
            + _array("float", "kNormMean", normalizer.mean, _floats(normalizer.mean))
            + _array("float", "kNormStd", normalizer.std, _floats(normalizer.std))
            + _array("char* const", "kClassNames", class_names, ", ".join(f'"{_escaped(c)}"' for c in class_names))
            + "\n#endif  // ESC50_MODEL_SETTINGS_H_\n")


MODEL_HEADER = """// Generated by task_esc50_tflite.py: this fold's full-integer model, for TensorFlow Lite Micro.
#ifndef ESC50_MODEL_DATA_H_
#define ESC50_MODEL_DATA_H_
extern const unsigned char g_model[];
extern const unsigned int g_model_len;
#endif  // ESC50_MODEL_DATA_H_
"""


def write_package(folder, model_path, header_text):
    """model_data.h, model_data.cc and model_settings.h in `folder`, which appears whole or not at all."""
    with open(model_path, "rb") as f:
        data = f.read()
    files = {"model_data.h": MODEL_HEADER, "model_settings.h": header_text,
             "model_data.cc": '#include "model_data.h"\n\n' + c_array("g_model", data)}
    with atomic.atomic_dir(folder) as temporary:
        for name, text in files.items():
            with open(os.path.join(temporary, name), "w") as f:
                f.write(text)
    return folder


def parse_header(text):
    """The constants of a generated header: {name: number, array or list of strings} (for the tests and
    for whoever checks a package in Python)."""
    values = {}
    for name, value in re.findall(r"static const \w+ (k\w+) = ([^;]+);", text):
        values[name] = float(value.rstrip("f")) if any(c in value for c in ".e") else int(value)
    for ctype, name, body in re.findall(r"static const ([\w* ]+?) (k\w+)\[\d+\] = \{(.*?)\};", text, re.S):
        if "char" in ctype:
            values[name] = [re.sub(r"\\(.)", r"\1", c) for c in re.findall(r'"((?:[^"\\]|\\.)*)"', body)]
        else:
            numbers = [v.strip().rstrip("f") for v in body.split(",") if v.strip()]
            values[name] = np.array(numbers, dtype=np.float64 if ctype == "float" else np.int64)
    return values


def header_features(values, clip):
    """The features a device computes from the header's constants, in plain numpy: the quantized input
    tensor (n_mels, n_frames) of one clip."""
    v = values
    y = np.zeros(v["kClipSamples"], np.float64)
    y[:min(len(clip), len(y))] = clip[:len(y)]
    y = np.pad(y, v["kCenterPadding"])
    window = np.zeros(v["kFftLength"])
    window[v["kWindowOffset"]:v["kWindowOffset"] + v["kWindowLength"]] = v["kWindow"]
    frames = np.stack([y[t * v["kHopLength"]:t * v["kHopLength"] + v["kFftLength"]] for t in range(v["kNumFrames"])])
    spectrum = np.abs(np.fft.rfft(frames * window, axis=1)) ** v["kPower"]
    mel = np.zeros((v["kNumMels"], v["kNumFrames"]))
    for m in range(v["kNumMels"]):
        start, length, offset = v["kMelStart"][m], v["kMelLength"][m], v["kMelOffset"][m]
        mel[m] = v["kMelWeights"][offset:offset + length] @ spectrum[:, start:start + length].T
    features = (np.log(mel + v["kLogOffset"]) - v["kNormMean"][:, None]) / v["kNormStd"][:, None]
    return quantize(features, v["kInputScale"], v["kInputZeroPoint"])
