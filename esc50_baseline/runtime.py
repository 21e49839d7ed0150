"""TensorFlow set-up in one place: quiet start-up, one seed, determinism, the GPU when present, precision.

Importing this module imports TensorFlow. TensorFlow's C++ start-up notices (oneDNN, CUDA probing) are
written straight to file descriptor 2 before any log level applies, so they are silenced at that level
while TensorFlow loads and probes devices; TF_CPP_MIN_LOG_LEVEL=0 shows them again.
"""
import contextlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def quiet_native_output(fds=(2,)):
    """Send what native code writes to these file descriptors to /dev/null for the duration."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") < "2":
        yield
        return
    import sys
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in fds}
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in fds:
        os.dup2(devnull, fd)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


with quiet_native_output():
    import tensorflow as tf
    import keras
    GPUS = tf.config.list_physical_devices("GPU")


def setup(seed, deterministic=True, mixed_precision=False):
    """Seed every generator, pick the device, set the precision policy; returns a one-line description."""
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
    return f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {device}, precision {mixed_precision or 'float32'}"
