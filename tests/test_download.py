"""The dataset download, against a small archive served on the loopback interface."""
import http.server
import os
import shutil
import threading
import zipfile

import pytest

from conftest import make_dataset
from esc50_baseline.data.dataset import Dataset
from esc50_baseline.data.download import ensure_dataset
from esc50_baseline.errors import UserError


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves one file; honours `Range: bytes=N-` unless the server says not to."""
    payload, honour_range, requests = b"", True, []

    def do_GET(self):
        start = 0
        header = self.headers.get("Range")
        type(self).requests.append(header)
        if header and self.honour_range:
            start = int(header.split("=")[1].rstrip("-"))
            self.send_response(206)
        else:
            self.send_response(200)
        body = self.payload[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    source = tmp_path / "src" / "ESC-50-master"
    make_dataset(str(source), n_classes=2, n_folds=2, per_fold=1, seconds=0.2)
    archive = tmp_path / "master.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for here, _dirs, files in os.walk(source.parent):
            for name in files:
                path = os.path.join(here, name)
                z.write(path, os.path.relpath(path, source.parent))
    RangeHandler.payload, RangeHandler.honour_range, RangeHandler.requests = archive.read_bytes(), True, []
    httpd = http.server.HTTPServer(("127.0.0.1", 0), RangeHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}/master.zip", RangeHandler
    httpd.shutdown()


def test_download_checks_and_unpacks(tmp_path, server):
    url, _ = server
    target = str(tmp_path / "datasets" / "ESC-50-master")
    assert ensure_dataset(target, url, show_progress=False) == target
    assert len(Dataset(target).clips) == 4 and not Dataset(target).missing_audio()
    assert not [p for p in os.listdir(tmp_path / "datasets") if p.startswith(".")]  # no staging left
    shutil.rmtree(target)  # the archive stays: a second call unpacks it again without downloading
    before = len(server[1].requests)
    ensure_dataset(target, url, show_progress=False)
    assert len(server[1].requests) == before and Dataset(target).clips


def test_interrupted_download_resumes(tmp_path, server):
    url, handler = server
    target = str(tmp_path / "datasets" / "ESC-50-master")
    os.makedirs(os.path.dirname(target))
    half = len(handler.payload) // 2
    with open(target + ".zip.part", "wb") as f:
        f.write(handler.payload[:half])  # what a killed download leaves
    ensure_dataset(target, url, show_progress=False)
    assert handler.requests[-1] == f"bytes={half}-"
    assert len(Dataset(target).clips) == 4


def test_server_without_ranges_and_corrupt_archive(tmp_path, server):
    url, handler = server
    target = str(tmp_path / "datasets" / "ESC-50-master")
    os.makedirs(os.path.dirname(target))
    with open(target + ".zip.part", "wb") as f:
        f.write(b"garbage from an earlier try")
    handler.honour_range = False  # the whole file comes again: the part file is started over
    ensure_dataset(target, url, show_progress=False)
    assert len(Dataset(target).clips) == 4
    handler.payload = b"PK\x03\x04 not really a zip"
    other = str(tmp_path / "datasets" / "other")
    with pytest.raises(UserError, match="corrupt and was deleted"):
        ensure_dataset(other, url, show_progress=False)
    assert not os.path.exists(other + ".zip.part") and not os.path.exists(other)


def test_unreachable_url_is_one_sentence(tmp_path):
    with pytest.raises(UserError, match="Downloading .* failed .*--dataset_path"):
        ensure_dataset(str(tmp_path / "d"), "http://127.0.0.1:9/nothing.zip", show_progress=False)


def test_an_archive_of_another_sha256_is_deleted_and_named(tmp_path, server):
    import hashlib
    url, handler = server
    right = hashlib.sha256(handler.payload).hexdigest()
    target = str(tmp_path / "datasets" / "ESC-50-master")
    assert ensure_dataset(target, url, show_progress=False, sha256=right.upper()) == target  # any case of hex
    other = str(tmp_path / "datasets" / "other")
    with pytest.raises(UserError, match=f"has SHA-256 {right}, not the 0+ of path.dataset_sha256"):
        ensure_dataset(other, url, show_progress=False, sha256="0" * 64)
    assert not os.path.exists(other + ".zip") and not os.path.exists(other)
