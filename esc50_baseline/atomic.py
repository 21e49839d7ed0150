"""Atomic file writing: write under a temporary name in the same folder, then rename over the target.

A reader never sees a half-written file: it sees the old file or the complete new one. A process killed
mid-write leaves only its temporary file, named `.tmp-<pid>-...`; `remove_stale_temporaries` deletes the
ones whose writer is no longer running (a run calls it at start).
"""
import contextlib
import os
import tempfile

PREFIX = ".tmp-"


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
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


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
