"""Atomic file writing: write under a temporary name in the same folder, then rename over the target.

A reader never sees a half-written file: it sees the old file or the complete new one. A process killed
mid-write leaves only its temporary file, named `.tmp-<pid>@<host>@...`; `remove_stale_temporaries` deletes
the ones whose writer is no longer running on this host (a run calls it at start). It leaves another
host's alone: on a disk shared by several machines, their writes in progress are not its to judge. A full disk stops the run with one
sentence naming the folder, and leaves no temporary file behind.
"""
import contextlib
import errno
import os
import re
import socket
import tempfile

from .errors import UserError

PREFIX = ".tmp-"
HOST = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "localhost"
WRITER = re.compile(r"^\.tmp-(\d+)(?:@([^@]+)@)?")  # pid, and the host (absent in older names: this one)
NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yields a temporary path to write to; renamed to `path` when the block finishes without error."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f"{PREFIX}{os.getpid()}@{HOST}@", suffix=suffix)
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
    """Delete temporary files left by killed writers of this host below `folder`; returns how many."""
    removed = 0
    for here, _dirs, files in os.walk(folder):
        for name in files:
            writer = WRITER.match(name)
            if writer and (writer.group(2) or HOST) == HOST and not _alive(int(writer.group(1))):
                with contextlib.suppress(FileNotFoundError):  # another process of this host removed it first
                    os.remove(os.path.join(here, name))
                    removed += 1
    return removed


@contextlib.contextmanager
def exclusive(path):
    """Hold an exclusive lock on `path` (created if missing) for the block: processes that share a disk
    take turns, the others waiting (flock: every process of a host; hosts too on NFS v4 and most cluster
    file systems)."""
    import fcntl
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
