"""Model size and complexity, the DCASE way: parameters, non-zero parameters and their bytes, layer by
layer, plus multiply-accumulates (MACs) per inference, and whether the model fits the DCASE
low-complexity limits (128 KB of non-zero parameters, 30 M MACs). The TFLite counterpart, read from a
.tflite flatbuffer, is tflite/size.py; both give rows of the same shape, formatted here.
"""
import numpy as np

DCASE_SIZE_LIMIT_BYTES = 128 * 1024
DCASE_MACS_LIMIT = 30_000_000
DTYPE_BYTES = {"float64": 8, "int64": 8, "float32": 4, "int32": 4, "uint32": 4, "float16": 2, "bfloat16": 2,
               "int16": 2, "uint16": 2, "int8": 1, "uint8": 1}


def layer_macs(layer):
    """Multiply-accumulates of one Keras layer per inference (convolutions and dense layers; 0 otherwise)."""
    kind = type(layer).__name__
    if kind == "Bidirectional":
        return 2 * _recurrent_macs(layer.forward_layer, layer.input.shape)
    if kind in ("LSTM", "GRU"):
        return _recurrent_macs(layer, layer.input.shape)
    if kind in ("Conv2D", "Conv1D", "DepthwiseConv2D", "SeparableConv2D", "Dense"):
        out_shape = layer.output.shape[1:]
        kernel = layer.kernel.shape  # conv: (*kernel, in, out) ; dense: (in, out)
        outputs_per_channel = int(np.prod(out_shape[:-1])) if len(out_shape) > 1 else 1
        if kind == "DepthwiseConv2D":
            return outputs_per_channel * int(out_shape[-1]) * int(np.prod(kernel[:-2]))
        if kind == "SeparableConv2D":
            depthwise = layer.depthwise_kernel.shape
            pointwise = layer.pointwise_kernel.shape
            in_positions = int(np.prod(layer.input.shape[1:-1]))
            return (outputs_per_channel * int(np.prod(depthwise[:-2])) * int(depthwise[-2]) * int(depthwise[-1])
                    + outputs_per_channel * int(pointwise[-2]) * int(pointwise[-1])) if in_positions else 0
        return outputs_per_channel * int(np.prod(kernel))
    return 0


def spatial_conv_share(model):
    """The share of a model's MACs in convolutions with kernels larger than 1x1 (a nested backbone's included):
    the work that CPUs' AMX units speed up in bfloat16 (runtime.auto_precision)."""
    spatial = total = 0
    for layer in leaf_layers(model):
        macs = layer_macs(layer)
        total += macs
        if type(layer).__name__ in ("Conv2D", "Conv1D") and int(np.prod(layer.kernel.shape[:-2])) > 1:
            spatial += macs
    return spatial / total if total else 0.0


def leaf_layers(model):
    for layer in model.layers:
        yield from (leaf_layers(layer) if hasattr(layer, "layers") else [layer])


def _recurrent_macs(layer, input_shape):
    """Every step: the gates' input and recurrent products (4 gates in an LSTM, 3 in a GRU)."""
    gates = 4 if type(layer).__name__ == "LSTM" else 3
    return int(input_shape[1]) * gates * layer.units * (int(input_shape[2]) + layer.units)


SUMMED = ("params", "nonzero", "bytes", "bytes_float32", "bytes_float16", "macs")


def keras_size_report(model):
    """Rows per layer with weights or MACs (a nested backbone's summed per block), and the totals."""
    rows = []
    for layer in model.layers:
        rows += _block_rows(layer) if hasattr(layer, "layers") else [r for r in [_layer_row(layer)] if r]
    return with_totals(rows)


def _layer_row(layer):
    weights = [np.asarray(w) for w in layer.get_weights()]
    count = sum(int(w.size) for w in weights)
    macs = layer_macs(layer)
    if not (count or macs):
        return None
    nonzero = sum(int(np.count_nonzero(w)) for w in weights)
    stored_bytes = sum(int(np.count_nonzero(w)) * DTYPE_BYTES.get(str(w.dtype), 4) for w in weights)
    return {"name": layer.name, "params": count, "nonzero": nonzero, "bytes": stored_bytes,
            "bytes_float32": 4 * nonzero, "bytes_float16": 2 * nonzero, "macs": macs}


def _block_rows(net):
    """A nested model (a pretrained backbone) in one row per block: a hundred layer rows would hide the head."""
    from .pretrained import blocks
    rows = []
    for name, layers in blocks(net):
        inner = [r for r in map(_layer_row, layers) if r]
        if inner:
            rows.append(dict({key: sum(r[key] for r in inner) for key in SUMMED}, name=f"{net.name}/{name}"))
    return rows


def with_totals(rows):
    total = {key: sum(r[key] for r in rows) for key in SUMMED}
    total["name"] = "Total"
    return {"layers": rows, "total": total,
            "fits_dcase_size": total["bytes"] <= DCASE_SIZE_LIMIT_BYTES,
            "fits_dcase_macs": total["macs"] <= DCASE_MACS_LIMIT}


def byte_string(n):
    return f"{n / 1024:.1f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.2f} MB"


def format_size_report(report, size_key="bytes"):
    """The DCASE table: Param, NZ Param and sizes per layer; MACs per layer; the limits at the end."""
    head = f"   {'Layer':<28} {'Param':>9} {'NZ Param':>9} {'NZ Size':>10} {'NZ float32':>11} {'NZ float16':>11} {'MACs':>12}"
    lines = [head, "   " + "-" * (len(head) - 3)]
    for r in report["layers"] + [None, report["total"]]:
        if r is None:
            lines.append("   " + "-" * (len(head) - 3))
            continue
        lines.append(f"   {r['name'][:28]:<28} {r['params']:>9,} {r['nonzero']:>9,} {byte_string(r[size_key]):>10} "
                     f"{byte_string(r['bytes_float32']):>11} {byte_string(r['bytes_float16']):>11} {r['macs']:>12,}")
    t = report["total"]
    size_ratio, macs_ratio = t[size_key] / DCASE_SIZE_LIMIT_BYTES, t["macs"] / DCASE_MACS_LIMIT
    lines.append(f"   DCASE limits: size {byte_string(t[size_key])} of 128.0 KB "
                 f"({'fits' if report['fits_dcase_size'] else f'too large: {size_ratio:.1f} times the limit'}), "
                 f"{t['macs'] / 1e6:.2f} M of 30 M MACs "
                 f"({'fits' if report['fits_dcase_macs'] else f'too many: {macs_ratio:.1f} times the limit'})")
    return "\n".join(lines)


def keras_file_report(path):
    """The report of a saved .keras model."""
    from .model_files import load_model
    return keras_size_report(load_model(path))
