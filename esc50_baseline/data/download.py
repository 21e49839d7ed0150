"""Fetch the official ESC-50 archive when no dataset copy is given: resumable, checked, unpacked atomically.

The archive is downloaded to NAME.zip.part (resumed with an HTTP Range request after an interruption),
renamed to NAME.zip only when complete, unpacked into a hidden temporary folder, checked (every csv row
has its audio file), and only then renamed into place. A half-done step is never mistaken for a done one.
"""
import os
import shutil
import urllib.error
import urllib.request
import zipfile

from ..atomic import exclusive
from .dataset import META_FILE, Dataset
from ..errors import UserError
from ..progress import Progress

CHUNK = 1 << 20


def ensure_dataset(target_dir, url, show_progress=True, sha256=None):
    """Return target_dir holding the dataset, downloading and unpacking it first if needed; with `sha256`, the
    archive must have that SHA-256 (one that does not is deleted, and named)."""
    if os.path.exists(os.path.join(target_dir, META_FILE)):
        return target_dir
    parent = os.path.dirname(os.path.abspath(target_dir))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise UserError(f"Cannot create the dataset folder {parent} ({e.strerror}); set path.dataset "
                        "to a writable place or pass --dataset_path.")
    archive = os.path.abspath(target_dir) + ".zip"
    with exclusive(archive + ".lock"):  # runs started together: one downloads and unpacks, the others wait
        if os.path.exists(os.path.join(target_dir, META_FILE)):
            return target_dir
        if not _valid_zip(archive):
            _download(url, archive, show_progress)
        if sha256:
            _check_sha256(archive, url, sha256)
        _unpack(archive, target_dir)
    return target_dir


def _valid_zip(path):
    if not os.path.exists(path):
        return False
    try:
        with zipfile.ZipFile(path) as z:
            return z.testzip() is None
    except (zipfile.BadZipFile, OSError):
        return False


def _download(url, archive, show_progress):
    part = archive + ".part"
    have = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    print(f"  Downloading {url}" + (f" (resuming at {have} bytes)" if have else ""))
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            if have and response.status != 206:
                have = 0  # the server ignored the range: start over
            length = response.headers.get("Content-Length")
            total = have + int(length) if length else 0
            progress = Progress(total // CHUNK + 1, "download (MB)") if show_progress and total else None
            with open(part, "ab" if have else "wb") as f:
                while block := response.read(CHUNK):
                    f.write(block)
                    if progress:
                        progress.update()
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # range not satisfiable: the part file is already complete
            pass
        else:
            raise UserError(f"Downloading {url} failed (HTTP {e.code}); check path.dataset_url, or download "
                            "the dataset yourself and pass --dataset_path.")
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
        raise UserError(f"Downloading {url} failed ({reason}); run again to resume, or download the "
                        "dataset yourself and pass --dataset_path.")
    if not _valid_zip(part):
        os.remove(part)
        raise UserError(f"The archive downloaded from {url} is corrupt and was deleted; run again to "
                        "download it afresh.")
    os.replace(part, archive)


def _check_sha256(archive, url, expected):
    import hashlib
    digest = hashlib.sha256()
    with open(archive, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    if digest.hexdigest() != expected.lower():
        os.remove(archive)
        raise UserError(f"The archive downloaded from {url} has SHA-256 {digest.hexdigest()}, not the "
                        f"{expected} of path.dataset_sha256; it was deleted. Check path.dataset_url and "
                        "path.dataset_sha256 (or download the dataset yourself and pass --dataset_path).")


def _unpack(archive, target_dir):
    target_dir = os.path.abspath(target_dir)
    staging = os.path.join(os.path.dirname(target_dir), "." + os.path.basename(target_dir) + ".unpacking")
    shutil.rmtree(staging, ignore_errors=True)  # the remains of an interrupted unpack
    print(f"  Unpacking {archive}")
    with zipfile.ZipFile(archive) as z:
        z.extractall(staging)
    root = _find_dataset_root(staging)
    if root is None:
        shutil.rmtree(staging, ignore_errors=True)
        raise UserError(f"{archive} holds no {META_FILE}; it is not an ESC-50 archive (delete it, "
                        "check path.dataset_url).")
    missing = Dataset(root).missing_audio()
    if missing:
        shutil.rmtree(staging, ignore_errors=True)
        raise UserError(f"{archive} lacks {len(missing)} audio file(s) named in its csv (e.g. {missing[0]}); "
                        "delete it and run again.")
    if os.path.exists(target_dir):
        shutil.rmtree(target_dir)
    os.replace(root, target_dir)
    shutil.rmtree(staging, ignore_errors=True)


def _find_dataset_root(folder):
    for here, _dirs, _files in os.walk(folder):
        if os.path.exists(os.path.join(here, META_FILE)):
            return here
    return None
