"""GET /jobs/{id}/export and GET /faces.zip against a real trained job."""
from __future__ import annotations

import asyncio
import io
import json
import shutil
import sys
import tempfile
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import app.export_api as export_api
from app.main import create_app
from app.registry import Busy
from app.zipstream import ZipWriter
from model.checkpoint import SERVING_ENTRIES, load_epoch
from model.faces import face_noise
from model.rundir import RunDir
from model.sampling import networks_from_checkpoint
from tests.app.conftest import AUTH, make_settings
from tests.model.test_export import ORT_SCRIPT, TORCHSCRIPT_SCRIPT, fake_run
from tests.standalone import run_standalone


def pixels(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))


def checkpoint_state(client, job_id: str, epoch: int) -> dict:
    runs = client.app.state.settings.runs_dir
    return load_epoch(RunDir(runs / job_id).checkpoints, epoch, entries=SERVING_ENTRIES)[1]


# -- export ------------------------------------------------------------------------------------
def test_the_onnx_export_draws_the_faces_generate_serves_without_project_code(served, tmp_path):
    c, job_id = served
    r = c.get(f"/jobs/{job_id}/export?format=onnx", headers=AUTH)
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"] == f'attachment; filename="{job_id}-epoch-0002.onnx"'
    assert r.headers["x-checkpoint"] == f"{job_id}/epoch-0002.pt"
    assert int(r.headers["content-length"]) == len(r.content)
    (tmp_path / "g.onnx").write_bytes(r.content)
    seeds = [0, 3, 42, 4294967295]
    np.save(tmp_path / "noise.npy", face_noise(seeds, 100).numpy())

    info = json.loads(run_standalone(ORT_SCRIPT, tmp_path / "g.onnx", tmp_path / "noise.npy",
                                     tmp_path / "images.npy", cwd=tmp_path))
    assert info["meta"]["job_id"] == job_id and info["meta"]["epoch"] == "2" and info["meta"]["weights"] == "ema"
    images = np.load(tmp_path / "images.npy")
    as_u8 = np.clip((images + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    for k, seed in enumerate(seeds):
        served_px = pixels(c.get(f"/generate?seed={seed}&n=1").content).astype(int)
        assert np.abs(as_u8[k].astype(int) - served_px).max() <= 1, f"seed {seed}"


def test_the_torchscript_export_draws_the_faces_generate_serves(served, tmp_path):
    c, job_id = served
    r = c.get(f"/jobs/{job_id}/export?format=torchscript", headers=AUTH)
    assert r.status_code == 200
    assert r.headers["content-disposition"] == f'attachment; filename="{job_id}-epoch-0002.pt"'
    (tmp_path / "g.pt").write_bytes(r.content)
    seeds = [0, 42]
    np.save(tmp_path / "noise.npy", face_noise(seeds, 100).numpy())
    meta = json.loads(run_standalone(TORCHSCRIPT_SCRIPT, tmp_path / "g.pt", tmp_path / "noise.npy",
                                     tmp_path / "images.npy", cwd=tmp_path))
    assert meta["job_id"] == job_id and meta["epoch"] == "2"
    images = np.load(tmp_path / "images.npy")
    as_u8 = np.clip((images + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    for k, seed in enumerate(seeds):
        served_px = pixels(c.get(f"/generate?seed={seed}&n=1").content).astype(int)
        assert np.abs(as_u8[k].astype(int) - served_px).max() <= 1, f"seed {seed}"


def test_a_safetensors_export_of_an_epoch_holds_its_serving_weights(served, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load

    c, job_id = served
    r = c.get(f"/jobs/{job_id}/export?epoch=1", headers=AUTH)  # safetensors is the default format
    assert r.status_code == 200
    assert r.headers["content-disposition"] == f'attachment; filename="{job_id}-epoch-0001.safetensors"'
    tensors = load(r.content)
    ema = checkpoint_state(c, job_id, 1)["generator_ema"]
    assert tensors.keys() == ema.keys() and all((tensors[k] == ema[k]).all() for k in ema)
    (tmp_path / "g.safetensors").write_bytes(r.content)
    with safe_open(tmp_path / "g.safetensors", framework="numpy") as f:
        meta = f.metadata()
    assert [meta[k] for k in ("job_id", "epoch", "nz", "ngf", "image_size")] == [job_id, "1", "100", "8", "96"]
    card = c.get(f"/jobs/{job_id}/card").json()  # the model card's data part travels with the file
    assert json.loads(meta["training_data"])["fingerprint"] == card["data"]["fingerprint"]
    png = c.get(f"/generate?seed=1&n=1&job={job_id}&epoch=1").content  # and the checksum its PNGs carry
    assert meta["checkpoint_checksum"] == Image.open(io.BytesIO(png)).text["checkpoint_checksum"]


def test_export_needs_the_token(served):
    c, job_id = served
    assert c.get(f"/jobs/{job_id}/export").status_code == 401
    assert c.get(f"/jobs/{job_id}/export", headers={"Authorization": "Bearer wrong"}).status_code == 401


@pytest.mark.parametrize("query,status,words", [
    ("/jobs/20990101-000000-abcdef/export", 404, "no job 20990101-000000-abcdef"),
    ("/jobs/{job}/export?epoch=9", 404, "has no checkpoint for epoch 9; its epochs: 1-2"),
    ("/jobs/{job}/export?format=pickle", 422, ""),
    ("/jobs/{job}/export?epoch=0", 422, ""),
    ("/jobs/not-a-job/export", 422, ""),
])
def test_export_refuses_what_does_not_exist_or_is_malformed(served, query, status, words):
    c, job_id = served
    r = c.get(query.format(job=job_id), headers=AUTH)
    assert r.status_code == status and words in json.dumps(r.json())


def test_a_job_without_checkpoints_has_nothing_to_export(served):
    c, _ = served
    (c.app.state.settings.runs_dir / "20260202-000000-abcdef").mkdir()
    r = c.get("/jobs/20260202-000000-abcdef/export", headers=AUTH)
    assert r.status_code == 404 and "no checkpoint yet" in r.json()["detail"]


def test_a_damaged_checkpoint_is_409_and_the_default_falls_back_to_an_older_one(served):
    c, job_id = served
    path = c.app.state.settings.runs_dir / job_id / "checkpoints" / "epoch-0002.pt"
    path.write_bytes(path.read_bytes()[:1000])
    r = c.get(f"/jobs/{job_id}/export?epoch=2", headers=AUTH)
    assert r.status_code == 409 and "epoch-0002.pt" in r.json()["detail"]
    r = c.get(f"/jobs/{job_id}/export", headers=AUTH)
    assert r.status_code == 200 and r.headers["x-checkpoint"] == f"{job_id}/epoch-0001.pt"


def test_a_missing_export_library_is_a_503_naming_the_extra(served, monkeypatch):
    c, job_id = served
    monkeypatch.setitem(sys.modules, "onnx", None)
    r = c.get(f"/jobs/{job_id}/export?format=onnx", headers=AUTH)
    assert r.status_code == 503 and "pip install 'dcgan-faces[export]'" in r.json()["detail"]


def test_the_export_temp_file_is_gone_once_sent(served, tmp_path, monkeypatch):
    c, job_id = served
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    assert c.get(f"/jobs/{job_id}/export?format=onnx", headers=AUTH).status_code == 200
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_second_export_at_once_is_told_to_retry(served):
    c, job_id = served
    assert export_api._EXPORT_SLOT.acquire(blocking=False)
    try:
        r = c.get(f"/jobs/{job_id}/export", headers=AUTH)
    finally:
        export_api._EXPORT_SLOT.release()
    assert r.status_code == 503 and r.headers["retry-after"] == "1"


# -- faces.zip ---------------------------------------------------------------------------------
def test_faces_zip_holds_each_seeds_generate_face(served):
    c, job_id = served
    r = c.get("/faces.zip?seeds=0-2,42,1")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"] == 'attachment; filename="faces.zip"'
    assert r.headers["x-checkpoint"] == f"{job_id}/epoch-0002.pt"
    z = zipfile.ZipFile(io.BytesIO(r.content))
    assert z.testzip() is None
    assert z.namelist() == ["seed0000.png", "seed0001.png", "seed0002.png", "seed0042.png"]
    for seed in (0, 2, 42):
        assert z.read(f"seed{seed:04d}.png") == c.get(f"/generate?seed={seed}&n=1").content
    assert c.get("/faces.zip?seeds=0-2,42,1").content == r.content  # same query, same bytes


def test_faces_zip_follows_job_epoch_and_truncation_as_generate_does(served):
    c, job_id = served
    q = f"job={job_id}&epoch=1&truncation=0.7"
    r = c.get(f"/faces.zip?seeds=5&{q}")
    assert r.status_code == 200 and r.headers["x-checkpoint"] == f"{job_id}/epoch-0001.pt"
    assert zipfile.ZipFile(io.BytesIO(r.content)).read("seed0005.png") == c.get(f"/generate?seed=5&n=1&{q}").content


@pytest.mark.parametrize("seeds,words", [
    ("9-0", "range 9-0 is reversed; write 0-9"),
    ("0-1000", "range 0-1000 has 1001 seeds, more than the limit of 1000"),
    ("4294967296", "seed 4294967296 is out of range 0..4294967295"),
    ("1,,2", "'' is neither a seed nor a range"),
    ("abc", "'abc' is neither a seed nor a range"),
    ("1,%202", "seeds are written without spaces"),
])
def test_faces_zip_refuses_bad_seeds_naming_the_parameter(served, seeds, words):
    c, _ = served
    r = c.get(f"/faces.zip?seeds={seeds}")
    assert r.status_code == 422 and words in json.dumps(r.json())
    assert r.json()["detail"][0]["loc"] == ["query", "seeds"]


def test_faces_zip_reads_leading_zeros_as_the_plain_number(served):
    c, _ = served
    r = c.get("/faces.zip?seeds=00000000001,0042")
    assert r.status_code == 200
    assert zipfile.ZipFile(io.BytesIO(r.content)).namelist() == ["seed0001.png", "seed0042.png"]


def test_faces_zip_needs_seeds_and_a_known_job(served):
    c, _ = served
    assert c.get("/faces.zip").status_code == 422
    assert c.get("/faces.zip?seeds=1&job=20990101-000000-abcdef").status_code == 404


def test_faces_zip_without_any_model_is_503(client):
    r = client.get("/faces.zip?seeds=1")
    assert r.status_code == 503 and "POST /train" in r.json()["detail"]


def test_faces_zip_beyond_the_streams_allowed_is_told_to_retry(served):
    c, _ = served
    assert c.get("/faces.zip?seeds=1").status_code == 200
    streaming = [c.app.state.renderer.open_stream() for _ in range(c.app.state.settings.max_zip_streams)]
    r = c.get("/faces.zip?seeds=1")
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    streaming[0]()
    streaming[0]()  # a second release of the same stream frees nothing more
    assert c.get("/faces.zip?seeds=1").status_code == 200  # and it gave its place back when done
    streaming.append(c.app.state.renderer.open_stream())  # the one place left
    with pytest.raises(Busy):
        c.app.state.renderer.open_stream()


def test_a_zip_streams_on_past_the_request_body_deadline(served_runs, tmp_path, queue):
    runs, job_id = served_runs
    settings = make_settings(tmp_path, body_timeout=0.05)
    shutil.copytree(runs, settings.runs_dir)
    with TestClient(create_app(settings, enqueue=queue)) as c:
        r = c.get("/faces.zip?seeds=0-299")  # far longer than 0.05 s to render
    assert r.status_code == 200 and len(zipfile.ZipFile(io.BytesIO(r.content)).namelist()) == 300


def test_the_zip_body_renders_a_chunk_only_after_the_last_one_was_sent(tmp_path):
    ref, state = load_epoch(RunDir(fake_run(tmp_path / "run")).checkpoints, None, entries=SERVING_ENTRIES)
    model = SimpleNamespace(g=networks_from_checkpoint(state)[0], job_id="run", ref=ref, checksum=None)
    events: list[str] = []

    async def run(work):
        events.append("render")
        return work()

    async def download() -> bytes:
        parts = []
        async for part in export_api.zip_body(model, list(range(150)), None, run):
            events.append("send")
            parts.append(part)
        return b"".join(parts)

    body = asyncio.run(download())
    assert events == ["render", "send"] * 3 + ["send"]  # 64 + 64 + 22 faces, then the directory
    assert len(zipfile.ZipFile(io.BytesIO(body)).namelist()) == 150


def test_the_zip_writer_makes_a_plain_archive_any_reader_opens():
    w = ZipWriter()
    members = {"a.png": b"x" * 1000, "seed0001.png": bytes(range(256)), "empty.png": b""}
    data = b"".join(w.add(name, body) for name, body in members.items()) + w.finish()
    z = zipfile.ZipFile(io.BytesIO(data))
    assert z.testzip() is None and {i.filename: z.read(i) for i in z.infolist()} == members
    assert all(i.flag_bits == 0 and i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in z.infolist())
