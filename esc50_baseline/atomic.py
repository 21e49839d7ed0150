"""Atomic file writing: write under a temporary name in the same folder, then rename over the target.

A reader never sees a half-written file: it sees the old file or the complete new one. A process killed
mid-write leaves only its temporary file (or folder: `atomic_dir`), named `.tmp-<pid>@<host>@...`;
`remove_stale_temporaries` deletes the ones whose writer is no longer running on this host (a run calls it
at start). It leaves another host's alone: on a disk shared by several machines, their writes in progress
are not its to judge. A full disk stops the run with one sentence naming the folder, and leaves no
temporary file behind.
"""
import contextlib
import errno
import os
import re
import shutil
import socket
import tempfile
import time

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


@contextlib.contextmanager
def atomic_dir(path):
    """Yields a temporary folder to fill; it takes the place of the folder `path` when the block finishes
    without error, so a reader sees the old folder or the complete new one (a kill between the two leaves
    none, never half of one). Named like a temporary file, so the start-up clean-up knows its writer."""
    parent = os.path.dirname(path) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f"{PREFIX}{os.getpid()}@{HOST}@")
    try:
        yield tmp
        if os.path.isdir(path):
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if disk_full(e):
            raise no_space(parent) from None
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
    """Delete temporary files left by killed writers of this host below `folder`, and claims that no
    longer stand; returns how many."""
    removed = 0
    for here, dirs, files in os.walk(folder):
        for name in files + list(dirs):
            writer = WRITER.match(name)
            dead_writer = writer and (writer.group(2) or HOST) == HOST and not _alive(int(writer.group(1)))
            dead_claim = name.startswith(CLAIM) and not claim_stands(os.path.join(here, name[len(CLAIM):]))
            if dead_writer or dead_claim:
                path = os.path.join(here, name)
                with contextlib.suppress(FileNotFoundError):  # another process of this host removed it first
                    if name in dirs:  # a folder being filled (atomic_dir)
                        dirs.remove(name)
                        shutil.rmtree(path)
                    else:
                        os.remove(path)
                    removed += 1
    return removed


@contextlib.contextmanager
def exclusive(path, waiting=None):
    """Hold an exclusive lock on `path` (created if missing) for the block: processes that share a disk
    take turns, the others waiting (flock: every process of a host; hosts too on NFS v4 and most cluster
    file systems). `waiting` is printed once by a process that finds the lock held, before it waits. The
    lock dies with its process, so a killed holder leaves nothing to clean up."""
    import fcntl
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                print(waiting, flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# Claims: a process that is about to make a file another process may also be about to make (processes
# sharing one cache) first creates `.claim-<name>` beside it, holding `<pid>@<host>`; the others leave
# the file to it. A claim whose writer died on this host, or that is older than CLAIM_STALE_S (another
# host's writer that died), no longer stands.
CLAIM, CLAIM_STALE_S = ".claim-", 60.0


def claim_path(path):
    return os.path.join(os.path.dirname(path), CLAIM + os.path.basename(path))


def claim(path):
    """True when this process now holds the claim on making `path`; False when another process does."""
    claim_file = claim_path(path)
    os.makedirs(os.path.dirname(claim_file) or ".", exist_ok=True)
    try:
        fd = os.open(claim_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(f"{os.getpid()}@{HOST}")
    return True


def release(path):
    with contextlib.suppress(FileNotFoundError):
        os.remove(claim_path(path))


def claim_stands(path):
    """True while another living process's claim on making `path` stands."""
    claim_file = claim_path(path)
    try:
        with open(claim_file) as f:
            owner = f.read()
        age = time.time() - os.path.getmtime(claim_file)
    except FileNotFoundError:
        return False
    pid, _, host = owner.partition("@")
    if host == HOST and pid.isdigit() and not _alive(int(pid)):
        return False
    return age <= CLAIM_STALE_S


def wait_for_claim(path, poll_s=0.05):
    """Wait while another process's claim on making `path` stands."""
    while claim_stands(path):
        time.sleep(poll_s)
