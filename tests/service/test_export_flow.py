"""/faces.zip and /jobs/{id}/export through a real uvicorn process: the zip arrives as a stream
while the app's memory stays flat, and the export downloads as a file that loads."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx
import pytest

from model.train import train
from tests.helpers import tiny_config, write_blob_images
from tests.service.stack import AUTH, Stack

pytestmark = pytest.mark.slow
JOB = "20260101-000000-00000b"
FACES = 12000  # ~3 KiB each from this tiny net: a zip several times the render's working set


def peak_rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """An app (no worker) serving a small trained model, allowed large zips."""
    stack = Stack(tmp_path_factory.mktemp("export"), redis_url=None, MAX_ZIP_FACES=str(FACES))
    data = write_blob_images(stack.data / "faces", 32)
    train(tiny_config(epochs=2, snapshot_epochs=(2,)), stack.runs / JOB, data_dir=data,
          cache_dir=stack.folder / "cache")
    url = stack.start_app()
    yield stack, url
    stack.stop()


def test_a_large_zip_streams_while_the_apps_memory_stays_flat(served):
    stack, url = served
    pid = stack.apps[0][0].pid
    with httpx.Client(base_url=url, timeout=120) as c:
        assert c.get("/faces.zip?seeds=0-1023").status_code == 200  # model loaded, allocator warm
        before = peak_rss_kib(pid)
        body, pieces = io.BytesIO(), 0
        with c.stream("GET", f"/faces.zip?seeds=0-{FACES - 1}") as r:
            assert r.status_code == 200 and "content-length" not in r.headers  # sent as it renders
            for piece in r.iter_raw():
                body.write(piece)
                pieces += 1
        grown_kib = peak_rss_kib(pid) - before
    z = zipfile.ZipFile(body)
    assert len(z.namelist()) == FACES and z.namelist()[-1] == f"seed{FACES - 1:04d}.png"
    assert z.testzip() is None
    size_kib = body.getbuffer().nbytes // 1024
    assert pieces > FACES // 64  # at least one piece per chunk of faces
    # A buffered answer would hold the whole zip (several times, while it was being built);
    # the stream holds a chunk of faces at a time. (The bound leaves room for a chunk's transient
    # buffers: onnxruntime's peak for a 64-face pass moved it by 0.2-15 MB between runs.)
    assert grown_kib < size_kib / 2, f"peak RSS grew {grown_kib} KiB for a {size_kib} KiB zip"


def test_the_export_downloads_as_an_attachment_that_loads(served, tmp_path):
    from safetensors import safe_open

    _, url = served
    with httpx.Client(base_url=url, timeout=120) as c:
        assert c.get(f"/jobs/{JOB}/export").status_code == 401
        r = c.get(f"/jobs/{JOB}/export?format=safetensors&epoch=2", headers=AUTH)
    assert r.status_code == 200 and int(r.headers["content-length"]) == len(r.content)
    assert r.headers["content-disposition"] == f'attachment; filename="{JOB}-epoch-0002.safetensors"'
    (tmp_path / "g.safetensors").write_bytes(r.content)
    with safe_open(tmp_path / "g.safetensors", framework="numpy") as f:
        assert f.metadata()["job_id"] == JOB and f.metadata()["epoch"] == "2"
