"""Atomic file writing: write under a temporary name in the same folder, then rename over the target.

A reader never sees a half-written file: it sees the old file or the complete new one. A process killed
mid-write leaves only its temporary file, named `.tmp-<pid>-...`; `remove_stale_temporaries` deletes the
ones whose writer is no longer running (a run calls it at start). A full disk stops the run with one
sentence naming the folder, and leaves no temporary file behind.
"""
import contextlib
import errno
import os
import tempfile

from .errors import UserError

PREFIX = ".tmp-"
NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yields a temporary path to write to; renamed to `path` when the block finishes without error."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f"{PREFIX}{os.getpid()}-", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if disk_full(e):
            raise no_space(folder) from None
        raise


def disk_full(error):
    """True for a full disk or quota, however deep a library wrapped the OSError that said so."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in NO_SPACE or "No space left on device" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def no_space(folder):
    return UserError(f"The disk holding {os.path.abspath(folder)} is full; free some space there (or set "
                     "path.application to a folder on another disk) and run the same command again: finished work "
                     "is kept.")


def write_bytes(path, data):
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text(path, text):
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder):
    """Delete temporary files left by killed writers below `folder`; returns how many."""
    removed = 0
    for here, _dirs, files in os.walk(folder):
        for name in files:
            if not name.startswith(PREFIX):
                continue
            pid = name[len(PREFIX):].split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                os.remove(os.path.join(here, name))
                removed += 1
    return removed
