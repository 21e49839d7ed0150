"""Ctrl-C and SIGTERM stop a run between two steps, and are never lost.

Python raises KeyboardInterrupt wherever the main thread is when it handles the signal. Inside a finalizer
(a __del__, which TensorFlow's and LiteRT's objects have, run by the garbage collector at any allocation)
the exception is only printed as "Exception ignored in ..." and the run goes on to the end. So every signal
is also recorded, and `check` raises it again at the next safe point: between stages, after each epoch,
around a TFLite conversion, and when the run ends.
"""
import contextlib
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received = []


def install():
    """Handle Ctrl-C and SIGTERM alike: record the signal and raise KeyboardInterrupt(signal number). A signal
    that the run was started with ignored (a shell's background job ignores Ctrl-C) stays ignored."""
    for sig in SIGNALS:
        if signal.getsignal(sig) != signal.SIG_IGN:
            signal.signal(sig, _interrupt)


def _interrupt(signum, _frame):
    _received.append(signum)
    raise KeyboardInterrupt(signum)


def _record(signum, _frame):
    _received.append(signum)


def check():
    """Raise the KeyboardInterrupt of a signal received earlier, in case the first one was swallowed."""
    if _received:
        raise KeyboardInterrupt(_received[0])


@contextlib.contextmanager
def deferred():
    """Ctrl-C and SIGTERM wait until the block is done, then stop the run as usual. An interrupt raised in the
    middle of the TFLite converter (C++ calling back into Python) once ended a test run with SIGSEGV."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives signals
        return
    check()
    previous = {sig: signal.signal(sig, _record) for sig in SIGNALS if signal.getsignal(sig) != signal.SIG_IGN}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    check()
