"""DCASE size and MACs of a .tflite file, read from its flatbuffer: the weight and bias tensors of every
convolution and fully connected operator (batch norm is folded into them, so it counts once), at the
bytes of their stored type (int8 1, float16 2, float32 and int32 bias 4)."""
import functools

import numpy as np

from ..models.complexity import with_totals
from .. import runtime  # noqa: F401  (TensorFlow, imported quietly)

TFLITE_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16, 9: np.int8}
WEIGHTED_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}


@functools.lru_cache(maxsize=1)
def _op_names():
    from tensorflow.lite.python import schema_py_generated as schema
    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def op_name(model, op):
    code = model.operatorCodes[op.opcodeIndex]
    return _op_names()[max(code.builtinCode, code.deprecatedBuiltinCode)]


def _constant(model, tensor):
    data = model.buffers[tensor.buffer].data
    if data is None or len(data) == 0:
        return None
    return np.frombuffer(np.asarray(data, dtype=np.uint8).tobytes(), dtype=TFLITE_TYPES[tensor.type])


def tflite_size_report(path):
    from tensorflow.lite.tools import flatbuffer_utils
    model = flatbuffer_utils.read_model(path)
    graph = model.subgraphs[0]
    producer = {out: op for op in graph.operators for out in op.outputs}

    def stored(index):
        """The constant behind an operand, looking through a DEQUANTIZE (float16 and some int8 models)."""
        tensor = graph.tensors[index]
        values = _constant(model, tensor)
        if values is None and index in producer and op_name(model, producer[index]) == "DEQUANTIZE":
            source = producer[index].inputs[0]
            return _constant(model, graph.tensors[source]), graph.tensors[source]
        return values, tensor

    rows = []
    for op in graph.operators:
        kind = op_name(model, op)
        if kind not in WEIGHTED_OPS:
            continue
        params = nonzero = size = 0
        for index in list(op.inputs)[1:]:
            if index < 0:
                continue
            values, tensor = stored(index)
            if values is None:
                continue
            params += values.size
            nonzero += int(np.count_nonzero(values))
            size += int(np.count_nonzero(values)) * np.dtype(TFLITE_TYPES[tensor.type]).itemsize
        out_shape = list(graph.tensors[op.outputs[0]].shape)
        weight_shape = list(graph.tensors[op.inputs[1]].shape)
        if kind == "FULLY_CONNECTED":
            macs = int(np.prod(weight_shape)) * int(np.prod(out_shape[:-1]) if len(out_shape) > 1 else 1)
        elif kind == "CONV_2D":  # filter (out, kh, kw, in)
            macs = int(np.prod(out_shape)) * int(np.prod(weight_shape[1:]))
        else:  # depthwise filter (1, kh, kw, channels)
            macs = int(np.prod(out_shape)) * int(np.prod(weight_shape[1:3]))
        rows.append({"name": f"{kind.lower()} {sum(r['name'].startswith(kind.lower()) for r in rows) + 1}",
                     "params": params,
                     "nonzero": nonzero, "bytes": size, "bytes_float32": 4 * nonzero,
                     "bytes_float16": 2 * nonzero, "macs": macs})
    return with_totals(rows)
