"""Run a .tflite model with the LiteRT interpreter, with correct quantization at its int8 boundary."""
import contextlib
import os
import sys
import time

import numpy as np

from ..errors import UserError


def quantize(x, scale, zero_point, dtype=np.int8):
    """Real values -> integers: round(x / scale) + zero_point, saturated to the integer type's range."""
    info = np.iinfo(dtype)
    return np.clip(np.round(np.asarray(x, dtype=np.float64) / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize(q, scale, zero_point):
    """Integers -> real values: (q - zero_point) * scale."""
    return (np.asarray(q, dtype=np.float64) - zero_point) * scale


def softmax(logits):
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def ends_in_softmax(path):
    """Whether the model's last operator is a softmax (probabilities out) rather than logits. Read by LiteRT itself,
    without its default delegate (which would name the fused operators DELEGATE), so that running a model never needs
    TensorFlow."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    interpreter = Interpreter(model_path=path,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    output = interpreter.get_output_details()[0]["index"]
    return any(op["op_name"] == "SOFTMAX" for op in interpreter._get_ops_details() if output in op["outputs"])


def model_problem(path, raw_audio=False):
    """Why LiteRT cannot run a .tflite file (truncated, not a model), or None when it loads and allocates.
    raw_audio: a raw-audio model must also take the time shift (earlier versions of this project rolled samples)."""
    from ai_edge_litert.interpreter import Interpreter
    try:
        interpreter = Interpreter(model_path=path)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if raw_audio and len(interpreter.get_input_details()) != 2:
        return "a raw-audio model without the time-shift input"
    return None


class TFLiteModel:
    """model = TFLiteModel(path); model.predict(features) -> probabilities (clips, classes)."""

    def __init__(self, path, num_threads=1, reference_kernels=False):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
        problem = model_problem(path)
        if problem:
            raise UserError(f"The TFLite model {path} is damaged ({problem}); delete it and run task_esc50_tflite.py "
                            "again to convert it anew.")
        # LiteRT's fast kernels (XNNPACK) put int8 outputs up to a few steps from TensorFlow Lite Micro's; its
        # reference kernels, which TFLM's resemble, within one
        kernels = OpResolverType.BUILTIN_REF if reference_kernels else OpResolverType.AUTO
        self.path = path
        self.interpreter = Interpreter(model_path=path, num_threads=num_threads, experimental_op_resolver_type=kernels)
        self.interpreter.allocate_tensors()
        self.invoked = False
        # a raw-audio model takes the test-time shift too: the int32 input (names may be stripped)
        inputs = self.interpreter.get_input_details()
        self.input = next(d for d in inputs if d["dtype"] != np.int32 or len(inputs) == 1)
        self.shift_input = next((d for d in inputs if d is not self.input), None)
        self.output = self.interpreter.get_output_details()[0]
        self.outputs_probabilities = ends_in_softmax(path)

    def input_tensor(self, x):
        """x: (n_mels, n_frames) float features of one clip (or its samples, for a raw-audio model) -> the model's
        input, quantized if it is integer."""
        x = np.reshape(x, self.input["shape"])
        if np.issubdtype(self.input["dtype"], np.integer):
            scale, zero = self.input["quantization"]
            x = quantize(x, scale, zero, self.input["dtype"])
        return x.astype(self.input["dtype"])

    def raw_output(self, tensor, shift=0):
        """The output tensor (classes,) as the model gives it (integers for an int8 model) for an input tensor."""
        self.interpreter.set_tensor(self.input["index"], tensor)
        if self.shift_input is not None:
            self.interpreter.set_tensor(self.shift_input["index"], np.full(self.shift_input["shape"], shift, np.int32))
        elif shift:
            raise UserError(f"The TFLite model {self.path} takes no time shift (a raw-audio model of an earlier "
                            "version); run task_esc50_tflite.py again to convert it anew.")
        if self.invoked:
            self.interpreter.invoke()
        else:  # the first run applies the default delegate, and LiteRT says so on stderr: "INFO: Created ..."
            with native_stderr_silenced():
                self.interpreter.invoke()
            self.invoked = True
        return self.interpreter.get_tensor(self.output["index"])[0]

    def predict_one(self, x, shift=0):
        """x: (n_mels, n_frames) float features of one clip (or its samples, and the frames to roll their features
        by) -> probabilities (classes,)."""
        y = self.raw_output(self.input_tensor(x), shift)
        if np.issubdtype(self.output["dtype"], np.integer):
            scale, zero = self.output["quantization"]
            y = dequantize(y, scale, zero)
        if self.outputs_probabilities:  # a model converted elsewhere, with its softmax inside
            y = np.clip(y, 0.0, None)
            return y / y.sum() if y.sum() > 0 else np.full_like(y, 1.0 / len(y))
        return softmax(y)

    def predict(self, features, shift=0):
        """Probabilities of every clip, and the mean seconds per clip (batch 1)."""
        started = time.perf_counter()
        out = np.stack([self.predict_one(x, shift) for x in features]) if len(features) else np.zeros((0, 0))
        return out, (time.perf_counter() - started) / max(len(features), 1)


@contextlib.contextmanager
def native_stderr_silenced():
    """Standard error's file descriptor pointed at /dev/null for a while: LiteRT's C++ log writes there, below
    Python, and has no switch of its own. Its errors still arrive, as the Python exceptions it raises."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
