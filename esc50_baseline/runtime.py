"""TensorFlow set-up in one place: quiet start-up, one seed, determinism, the GPU when present, precision,
and kernels that run every layer of the project's networks on every device (oneDNN on CPUs; see below).

Importing this module imports TensorFlow. TensorFlow's C++ start-up notices (oneDNN, CUDA probing) are
written straight to file descriptor 2 before any log level applies, so they are silenced at that level
while TensorFlow loads and probes devices; TF_CPP_MIN_LOG_LEVEL=0 shows them again.
"""
import contextlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# oneDNN's CPU kernels, which TensorFlow turns on by itself only on CPUs with AVX-512 VNNI, BF16 or AMX. On a
# 2-core AVX2-only AMD EPYC (bench_efficiency.py) they trained vgg7 1.13x and low_complexity 1.5-1.8x faster,
# and they take the unequal strides of its depthwise convolutions (see native_unequal_strides).
# TF_ENABLE_ONEDNN_OPTS=0 keeps TensorFlow's own kernels.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


@contextlib.contextmanager
def quiet_native_output(fds=(2,)):
    """Send what native code writes to these file descriptors to /dev/null for the duration."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") < "2":
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        with native_output_to(devnull, fds):
            yield
    finally:
        os.close(devnull)


@contextlib.contextmanager
def native_output_to(target, fds):
    """What native code writes to these file descriptors goes to the open descriptor `target` meanwhile."""
    import ctypes
    import sys
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in fds}
    for fd in fds:
        os.dup2(target, fd)
    try:
        yield
    finally:
        ctypes.CDLL(None).fflush(None)  # C's own buffer: printf to a file is not flushed at each line
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)


with quiet_native_output():
    import tensorflow as tf
    import keras
    GPUS = tf.config.list_physical_devices("GPU")


def native_unequal_strides():
    """Whether TensorFlow's kernels here run a depthwise convolution whose strides differ between time and
    frequency (the mobile family downsamples them apart). oneDNN's CPU kernel does; TensorFlow's own, used
    on GPUs and on CPUs where TensorFlow leaves oneDNN off (by default all without AVX-512 VNNI, BF16 or AMX:
    AVX2-only machines among them), refuses them. Asked of TensorFlow's build flags, not by running an op:
    an op would fix the thread and device settings that code after this import may still make."""
    try:
        from tensorflow.python.util import _pywrap_util_port
        return not GPUS and bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return False  # decomposing is always correct, only slower


_DECOMPOSE = {"on": False}


def _decompose_unequal_strides():
    """Run Keras's depthwise convolutions with unequal strides as Keras already runs strided and dilated ones:
    the convolution at stride 1 after the strided 'same' padding, then every stride-th row and column. The
    same numbers, and the same saved models (the layer is unchanged); it costs the stride-1 work in those
    layers, so it is done only where the native kernel refuses."""
    from keras.src.backend.tensorflow import nn
    keras_rule = nn._needs_depthwise_stride_dilation_decomposition
    if not getattr(keras_rule, "unequal_strides", False):
        def rule(strides, dilation_rate):
            return keras_rule(strides, dilation_rate) or (_DECOMPOSE["on"] and len(set(strides)) > 1)
        rule.unequal_strides = True
        nn._needs_depthwise_stride_dilation_decomposition = rule
    _DECOMPOSE["on"] = True


@contextlib.contextmanager
def strided_depthwise_ops():
    """Meanwhile a traced model keeps each depthwise convolution one strided op: for the TFLite converter,
    which only traces (its kernels take unequal strides), so a device runs the layer as it was built."""
    before, _DECOMPOSE["on"] = _DECOMPOSE["on"], False
    try:
        yield
    finally:
        _DECOMPOSE["on"] = before


if not native_unequal_strides():
    _decompose_unequal_strides()


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            return set(next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), []))
    except OSError:
        return set()


# bfloat16 against float32 in one training step on a CPU with AMX (a 2-core Xeon, TensorFlow 2.21, oneDNN): a 3x3
# convolution 1.86x as fast, a 1x1 one 0.99x, a depthwise one 0.78x; whole sets (benchmarks/bench_efficiency.py
# --bf16): vgg7 1.74x, the mobile networks (12 % of their MACs in 3x3 convolutions) 0.68-0.74x.
AMX_BF16_MIN_SPATIAL_SHARE = 0.5


def auto_precision(spatial_share=None):
    """The fastest safe policy for this hardware and network: mixed_float16 on GPUs with tensor cores (compute
    capability 7.0+); on CPUs with AMX bf16 units, mixed_bfloat16 for networks whose multiply-accumulates are
    mostly in convolutions with kernels larger than 1x1, float32 for the others; float32 elsewhere.
    `spatial_share`: a callable giving the network's share of such MACs (complexity.spatial_conv_share), called
    only on AMX; None counts as a network of such convolutions."""
    if GPUS:
        details = tf.config.experimental.get_device_details(GPUS[0])
        return "mixed_float16" if details.get("compute_capability", (0, 0)) >= (7, 0) else False
    if "amx_bf16" not in cpu_flags():
        return False
    return "mixed_bfloat16" if spatial_share is None or spatial_share() >= AMX_BF16_MIN_SPATIAL_SHARE else False


def distribution_strategy(kind):
    """none: the default (one device); mirrored: every GPU, or every logical CPU when there is no GPU;
    multi_worker: synchronous training across the hosts that TF_CONFIG names."""
    if kind in (None, False, "none"):
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])
    if "TF_CONFIG" not in os.environ:
        from .errors import UserError
        raise UserError("learner.distribution is multi_worker but the environment variable TF_CONFIG is not set; "
                        "set it on every host (see the README) or use none or mirrored.")
    return tf.distribute.MultiWorkerMirroredStrategy()


def setup(seed, deterministic=True, mixed_precision=False, spatial_share=None):
    """Seed every generator, pick the device, set the precision policy; returns a one-line description.
    `spatial_share`: for mixed_precision auto, see auto_precision (a network it builds to count its MACs is
    cleared before the seeding, so that the trained network is built as it would be without it)."""
    chosen = " (auto)" if mixed_precision == "auto" else ""
    if mixed_precision == "auto":
        mixed_precision = auto_precision(spatial_share)
        keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    for gpu in GPUS:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass  # already initialised in this process
    keras.mixed_precision.set_global_policy(mixed_precision or "float32")
    device = f"{len(GPUS)} GPU(s)" if GPUS else f"CPU ({os.cpu_count()} cores)"
    precision = f"{mixed_precision or 'float32'}{chosen}"
    return f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {device}, precision {precision}"
