"""Checkpoints and models under faults: a kill mid-write, damaged or hostile files, a full disk."""
from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
import torch

from model.checkpoint import FORMAT, load_checkpoint
from tests.helpers import write_blob_images
from tests.service.stack import REPO, Redis, Stack, client, submit, wait_for, wait_job

pytestmark = pytest.mark.slow


def test_a_kill_in_the_middle_of_a_checkpoint_write_leaves_the_previous_one_and_no_partial_file(tmp_path):
    data = write_blob_images(tmp_path / "data", 4)
    run = tmp_path / "run"
    # wide nets: each checkpoint is ~340 MB, so its write is long enough to be caught in the act
    args = [sys.executable, "-m", "model", "train", "--data", data, "--out", run, "--device", "cpu",
            "--ngf", "128", "--ndf", "128", "--batch-size", "2", "--epochs", "2", "--snapshot-epochs", "2",
            "--swd-images", "0", "--cache-dir", tmp_path / "cache"]
    proc = subprocess.Popen(list(map(str, args)), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpts = run / "checkpoints"
    temp = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if (ckpts / "epoch-0001.pt").exists():
            temps = list(ckpts.glob(".epoch-0002.pt.tmp-*"))
            if temps:
                temp = temps[0]
                proc.send_signal(signal.SIGKILL)
                break
        time.sleep(0.002)
    proc.wait(30)
    assert temp is not None, "never caught the second checkpoint being written"
    names = sorted(p.name for p in ckpts.iterdir())
    assert not (ckpts / "epoch-0002.pt").exists() or load_checkpoint(ckpts / "epoch-0002.pt")
    assert load_checkpoint(ckpts / "epoch-0001.pt")["epoch"] == 1
    assert any(n.startswith(".epoch-0002.pt.tmp-") for n in names)  # the torn write, under a temp name
    # resuming cleans the stray temp file and carries on from epoch 1
    done = subprocess.run(list(map(str, args)), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not list(ckpts.glob(".*tmp*"))
    assert load_checkpoint(ckpts / "epoch-0002.pt")["epoch"] == 2


@pytest.fixture(scope="module")
def served_job(tmp_path_factory):
    redis = Redis(tmp_path_factory.mktemp("redis"))
    stack = Stack(tmp_path_factory.mktemp("stack"), redis.url)
    stack.start_worker()
    c = client(stack.start_app())
    job_id = submit(c, epochs=3, snapshot_epochs=[1, 2, 3])
    wait_job(c, job_id, {"succeeded"})
    yield stack, c, job_id
    stack.stop()
    redis.stop()


def _tensor_data_offset(path, storage: str) -> int:
    """Where the bytes of one tensor storage (`data/N` inside torch's zip) start in the file."""
    import struct
    import zipfile
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(f"/data/{storage}"))
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_len + extra_len


@pytest.mark.parametrize("damage", ["truncated", "bit-flipped"])
def test_a_damaged_newest_checkpoint_is_skipped_for_the_previous_one(served_job, damage):
    stack, c, job_id = served_job
    newest = stack.runs / job_id / "checkpoints" / "epoch-0003.pt"
    good = newest.read_bytes()
    try:
        raw = bytearray(good)
        if damage == "truncated":
            raw = raw[: len(raw) // 3]
        else:  # inside the generator's first weight tensor (storage 0: G is the first entry saved)
            start = _tensor_data_offset(newest, "0")
            for i in range(start, start + 256):
                raw[i] ^= 0x5A
        tmp = newest.with_name("damaged.tmp")
        tmp.write_bytes(bytes(raw))
        tmp.replace(newest)
        r = wait_for(lambda: (x := c.get("/generate?seed=1&n=4")).headers.get("x-checkpoint", "").endswith(
            "epoch-0002.pt") and x, 10, "the previous checkpoint to be served")
        assert r.status_code == 200
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert "epoch-0003.pt" in " ".join(ready.json()["problems"])
    finally:
        newest.write_bytes(good)
        os.utime(newest)
    wait_for(lambda: c.get("/readyz").json()["status"] == "ready", 10, "recovery once the file is good")


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_whose_pickle_runs_code_is_refused_and_the_code_never_runs(served_job, tmp_path):
    stack, c, job_id = served_job
    marker = tmp_path / "pwned"
    hostile = stack.runs / job_id / "checkpoints" / "epoch-0009.pt"
    hostile.write_bytes(pickle.dumps({"format": FORMAT, "generator": _Exploit(marker)}))
    try:
        r = wait_for(lambda: (x := c.get("/generate?seed=2&n=4")).headers.get("x-checkpoint", "").endswith(
            "epoch-0003.pt") and x, 10, "the hostile file to be skipped")
        assert r.status_code == 200
        assert c.get("/readyz").json()["status"] == "degraded"
        assert c.get(f"/generate?seed=2&n=4&job={job_id}&epoch=9").status_code == 404
        assert not marker.exists()
    finally:
        hostile.unlink()


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "small-disk"
    mount.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=215m", "tmpfs", str(mount)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"mounting a small tmpfs needs root: {r.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_while_saving_keeps_the_previous_checkpoint_and_fails_the_job_clearly(tmp_path, small_disk):
    redis = Redis(tmp_path / "redis")
    stack = Stack(tmp_path / "stack", redis.url)
    stack.runs = small_disk  # runs, checkpoints and caches on a 215 MB disk; ~90 MB a checkpoint
    stack.env["RUNS_DIR"] = str(small_disk)
    try:
        stack.start_worker()
        c = client(stack.start_app())
        job_id = submit(c, ngf=64, ndf=64, epochs=6, snapshot_epochs=[6])
        job = wait_job(c, job_id, {"failed", "succeeded"}, timeout=300)
        assert job["state"] == "failed"
        assert "disk full" in job["error"] and "last complete checkpoint is kept" in job["error"]
        ckpts = small_disk / job_id / "checkpoints"
        assert sorted(p.name for p in ckpts.iterdir()) == ["epoch-0001.pt", "epoch-0002.pt"]
        state = torch.load(ckpts / "epoch-0002.pt", weights_only=True)
        assert state["epoch"] == 2
    finally:
        stack.stop()
        redis.stop()
