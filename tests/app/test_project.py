"""POST /project and latent=ID: a picture's latent found on a real trained tiny model, stored,
and drawn by /generate, /nearest and /interpolate; hostile uploads and stored files refused
with a 4xx, never a 500."""
from __future__ import annotations

import io
import json
import os
import shutil

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from app.latents import LatentNotFound, LatentStore, latent_id
from app.main import create_app
from app.registry import torch_generator
from model.imageio import to_uint8
from model.projection import PROJECT_SEED, psnr
from model.sampling import run_generator, sample_noise
from tests.app.conftest import AUTH, make_settings, trained_job

PNG = {**AUTH, "Content-Type": "image/png"}


def pixels(body: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(body)) as im:
        return np.asarray(im.convert("RGB"))


def encoded(array: np.ndarray, fmt: str = "PNG", mode: str | None = None, **options) -> bytes:
    buf = io.BytesIO()
    im = Image.fromarray(array)
    (im.convert(mode) if mode else im).save(buf, format=fmt, **options)
    return buf.getvalue()


@pytest.fixture
def quick(tmp_path, served_runs, queue):
    """(client, job_id) of an app serving a copy of the trained job, projecting in 5 steps (the
    time limit far off: projection threads run at nice 15 and get little CPU on a busy machine)."""
    runs, job_id = served_runs
    settings = make_settings(tmp_path, project_steps=5, project_starts=2, project_seconds=600)
    shutil.copytree(runs, settings.runs_dir)
    with TestClient(create_app(settings, enqueue=queue)) as c:
        yield c, job_id


@pytest.fixture
def projected(quick):
    """(client, job_id, face PNG of seed 5, POST /project's answer for it)."""
    c, job_id = quick
    face = c.get("/generate?seed=5&n=1").content
    r = c.post("/project", content=face, headers=PNG)
    assert r.status_code == 200, r.text
    return c, job_id, face, r.json()


@pytest.fixture(scope="module")
def varied_runs(tmp_path_factory, image_folder):
    """A tiny job trained long enough that its faces differ (the 2-epoch one draws the same grey
    face for every seed, so any latent would reproduce it)."""
    runs = tmp_path_factory.mktemp("varied") / "runs"
    return runs, trained_job(runs, image_folder, epochs=8, lr=1e-3).job_id


def test_a_face_the_model_made_projects_back_above_20_db_far_above_where_it_started(tmp_path, varied_runs,
                                                                                     queue):
    runs, job_id = varied_runs
    settings = make_settings(tmp_path)
    shutil.copytree(runs, settings.runs_dir)
    with TestClient(create_app(settings, enqueue=queue)) as c:
        g, _ = torch_generator(c.app.state.registry.get())
        for seed in (5, 6):
            face = c.get(f"/generate?seed={seed}&n=1").content
            starts = to_uint8(run_generator(g, sample_noise(PROJECT_SEED, range(8), g.nz))).permute(0, 2, 3, 1)
            closest_start = max(psnr(s.numpy(), pixels(face)) for s in starts)
            r = c.post("/project", content=face, headers=PNG)
            assert r.status_code == 200, r.text
            found = r.json()
            drawn = pixels(c.get(found["url"]).content)
            assert psnr(drawn, pixels(face)) >= 20 and psnr(drawn, pixels(face)) >= closest_start + 10, (
                found, closest_start)


def test_a_latents_face_is_its_own_cached_image_with_its_provenance(projected):
    c, job_id, face, body = projected
    assert body["psnr"] >= 20 and body["job_id"] == job_id and body["checkpoint"] == f"{job_id}/epoch-0002.pt"
    assert body["url"] == f"/generate?latent={body['latent']}&n=1" and body["stopped"] == "steps"
    r = c.get(body["url"])
    assert r.status_code == 200 and r.headers["x-checkpoint"] == body["checkpoint"]
    assert psnr(pixels(r.content), pixels(face)) == pytest.approx(body["psnr"], abs=0.5)
    assert psnr(pixels(r.content), pixels(face)) >= 20
    text = Image.open(io.BytesIO(r.content)).text
    assert text["latent"] == body["latent"] and "seed" not in text and text["job"] == job_id
    assert text["checkpoint_checksum"] == body["checkpoint_checksum"]
    again = c.get(f"/generate?latent={body['latent']}")  # n left out: the latent's one face
    assert again.content == r.content and again.headers["etag"] == r.headers["etag"]
    assert "immutable" in again.headers["cache-control"]
    assert c.get(f"/generate?latent={body['latent']}&format=jpeg").headers["etag"] != r.headers["etag"]
    assert r.headers["etag"] != c.get("/generate?seed=5&n=1").headers["etag"]


def test_the_same_picture_gets_the_same_latent_even_computed_again(projected):
    c, _, face, body = projected
    assert c.post("/project", content=face, headers=PNG).json() == body  # remembered
    c.app.state.projector._answers.clear()
    assert c.post("/project", content=face, headers=PNG).json()["latent"] == body["latent"]  # recomputed


def test_the_latent_works_in_nearest_and_interpolate(projected):
    c, job_id, _, body = projected
    lid = body["latent"]
    near = c.get(f"/nearest?latent={lid}&k=3")
    assert near.status_code == 200, near.text
    assert near.json()["latent"] == lid and "seed" not in near.json() and len(near.json()["neighbours"]) == 3
    assert c.get(body["nearest_url"]).json()["neighbours"][:3] == near.json()["neighbours"]
    strip = c.get(f"/interpolate?latent={lid}&seed_b=3&steps=4")
    assert strip.status_code == 200, strip.text
    first = pixels(strip.content)[2:98, 2:98]
    assert np.array_equal(first, pixels(c.get(body["url"]).content))  # the walk starts at the latent's face
    text = Image.open(io.BytesIO(strip.content)).text
    assert text["latent"] == lid and "seed_a" not in text and text["seed_b"] == "3"
    last = pixels(strip.content)[2:98, -98:-2]
    assert np.array_equal(last, pixels(c.get("/generate?seed=3&n=1").content))
    other = c.get(f"/interpolate?latent={lid}&seed_b=3&steps=4&format=gif")
    assert other.status_code == 200 and other.headers["etag"] != strip.headers["etag"]
    assert c.get(f"/generate?latent={lid}&epoch=1").headers["x-checkpoint"] == f"{job_id}/epoch-0001.pt"


@pytest.mark.parametrize("query, named", [
    ("/generate?latent={}&seed=3", "seed"), ("/generate?latent={}&n=2", "n"),
    ("/generate?latent={}&best_of=4", "best_of"), ("/generate?latent={}&truncation=0.5", "truncation"),
    ("/nearest?latent={}&i=1", "i"), ("/nearest?latent={}&seed=1", "seed"),
    ("/interpolate?latent={}&seed_a=1", "seed_a")])
def test_parameters_that_cannot_go_with_a_latent_are_a_422_naming_them(projected, query, named):
    c, _, _, body = projected
    r = c.get(query.format(body["latent"]))
    assert r.status_code == 422 and named in r.json()["detail"], r.text


def test_latent_ids_of_the_wrong_form_are_422_and_unknown_ones_404(served):
    c, _ = served
    for path in ("/generate", "/nearest", "/interpolate"):
        assert c.get(f"{path}?latent=xyz").status_code == 422
        assert c.get(f"{path}?latent={'A' * 24}").status_code == 422
        r = c.get(f"{path}?latent={'0' * 24}")
        assert r.status_code == 404 and "no latent" in r.json()["detail"]


def _stored(c) -> tuple[str, os.PathLike]:
    folder = c.app.state.latents.folder
    (name,) = [p for p in os.listdir(folder) if p.endswith(".json")]
    return name[:-5], folder / name


@pytest.mark.parametrize("damage", ["garbage", "nan", "short", "huge value", "other id", "too big", "folder",
                                    "not a dict"])
def test_a_damaged_latent_file_is_a_404_never_a_500(quick, damage):
    c, _ = quick
    face = c.get("/generate?seed=1&n=1").content
    lid = c.post("/project", content=face, headers=PNG).json()["latent"]
    _, path = _stored(c)
    doc = json.loads(path.read_text())
    if damage == "garbage":
        path.write_bytes(b"\x00\xff{" * 10)
    elif damage == "nan":
        path.write_text(json.dumps({**doc, "z": [float("nan")] * doc["nz"]}))
    elif damage == "short":
        path.write_text(json.dumps({**doc, "z": doc["z"][:-1]}))
    elif damage == "huge value":
        path.write_text(json.dumps({**doc, "z": [1e30] * doc["nz"]}))
    elif damage == "other id":  # a valid latent whose content does not hash to the file's name
        path.write_text(json.dumps({**doc, "z": [0.5] * doc["nz"]}))
    elif damage == "too big":
        path.write_bytes(b" " * (1 << 20))
    elif damage == "folder":
        path.unlink()
        path.mkdir()
    else:
        path.write_text("[1, 2, 3]")
    for url in (f"/generate?latent={lid}", f"/nearest?latent={lid}", f"/interpolate?latent={lid}"):
        r = c.get(url)
        assert r.status_code == 404, (url, r.text)
        assert "damaged" in r.json()["detail"]


def test_project_needs_the_token(served):
    c, _ = served
    face = c.get("/generate?seed=5&n=1").content
    assert c.post("/project", content=face, headers={"Content-Type": "image/png"}).status_code == 401
    wrong = {"Authorization": "Bearer nope", "Content-Type": "image/png"}
    assert c.post("/project", content=face, headers=wrong).status_code == 401


def _animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, format=fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def _uploads() -> dict[str, tuple[str, bytes, int]]:
    rng = np.random.default_rng(0)
    photo = (rng.random((120, 80, 3)) * 255).astype(np.uint8)
    png = encoded(photo)
    jpeg = encoded(photo, "JPEG")
    sixteen = io.BytesIO()
    Image.fromarray((rng.random((40, 40)) * 65535).astype(np.uint16)).save(sixteen, format="PNG")
    bomb = io.BytesIO()
    Image.new("L", (5000, 4000)).save(bomb, format="PNG", optimize=True)
    palette_alpha = io.BytesIO()
    Image.fromarray(photo).convert("P").save(palette_alpha, format="PNG", transparency=0)
    return {  # name: (Content-Type, body, status)
        "text/plain": ("text/plain", png, 415),
        "no content type": ("", png, 415),
        "a jpeg sent as png": ("image/png", jpeg, 422),
        "a png sent as webp": ("image/webp", png, 422),
        "empty": ("image/png", b"", 422),
        "garbage": ("image/jpeg", bytes(rng.integers(0, 256, 5000, dtype=np.uint8)), 422),
        "truncated png": ("image/png", png[:len(png) // 2], 422),
        "truncated jpeg": ("image/jpeg", jpeg[:len(jpeg) // 2], 422),
        "animated png": ("image/png", _animated("PNG"), 422),
        "animated webp": ("image/webp", _animated("WEBP"), 422),
        "tiny": ("image/png", encoded(photo[:4, :4]), 422),
        "20 megapixels": ("image/png", bomb.getvalue(), 422),
        "over the body limit": ("image/png", png + b"\0" * 1_000_001, 413),
        "png": ("image/png", png, 200),
        "jpeg with parameters": ("image/jpeg; charset=binary", jpeg, 200),
        "webp": ("image/webp", encoded(photo, "WEBP"), 200),
        "cmyk jpeg": ("image/jpeg", encoded(photo, "JPEG", "CMYK"), 200),
        "palette with transparency": ("image/png", palette_alpha.getvalue(), 200),
        "rgba": ("image/png", encoded(photo, mode="RGBA"), 200),
        "grey": ("image/png", encoded(photo, mode="L"), 200),
        "16-bit": ("image/png", sixteen.getvalue(), 200),
    }


UPLOADS = _uploads()


@pytest.mark.parametrize("name", list(UPLOADS))
def test_hostile_uploads_are_a_clear_4xx_and_odd_but_real_pictures_project(quick, name):
    c, _ = quick
    media, body, status = UPLOADS[name]
    headers = {**AUTH, "Content-Type": media} if media else AUTH
    r = c.post("/project", content=body, headers=headers)
    assert r.status_code == status, r.text
    if status == 200:
        assert c.get(r.json()["url"]).status_code == 200
    else:
        assert isinstance(r.json()["detail"], str) and r.json()["detail"]


def test_a_busy_lane_is_a_503_with_retry_after(quick):
    c, _ = quick
    lane = c.app.state.projector
    releases = [lane.admit() for _ in range(lane.places.limit)]  # concurrency + queue places taken
    face = c.get("/generate?seed=1&n=1").content
    r = c.post("/project", content=face, headers=PNG)
    assert r.status_code == 503 and r.headers["retry-after"] == "10"
    for release in releases:
        release()
    assert c.post("/project", content=face, headers=PNG).status_code == 200


def test_the_store_keeps_the_newest_latents_and_ids_hash_checksum_and_values(tmp_path):
    store = LatentStore(tmp_path / "latents", max_count=2)
    ids = []
    for k in range(3):
        saved = store.save("20260101-000000-00000a", 1, "epoch-0001.pt", "crc32:0000abcd", torch.full((4,), float(k)),
                           21.5)
        ids.append(saved.id)
        os.utime(store._path(saved.id), ns=(k * 10**9, k * 10**9))  # file times a clear order apart
    store._prune()
    assert not store.exists(ids[0]) and store.exists(ids[1]) and store.exists(ids[2])
    back = store.load(ids[2])
    assert torch.equal(back.z, torch.full((4,), 2.0)) and back.checksum == "crc32:0000abcd" and back.epoch == 1
    assert latent_id("crc32:0000abcd", back.z) == ids[2] != latent_id("crc32:0000abce", back.z)
    with pytest.raises(LatentNotFound):
        store.load(ids[0])


def test_a_store_that_cannot_be_written_is_a_503_and_a_gone_checkpoint_a_404(quick):
    c, job_id = quick
    face = c.get("/generate?seed=2&n=1").content
    folder = c.app.state.latents.folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_bytes(b"")  # a file where the folder should be: nothing can be written in it
    r = c.post("/project", content=face, headers=PNG)
    assert r.status_code == 503 and "could not be stored" in r.json()["detail"]
    folder.unlink()
    lid = c.post("/project", content=face, headers=PNG).json()["latent"]
    (c.app.state.registry.runs_dir / job_id / "checkpoints" / "epoch-0002.pt").unlink()
    r = c.get(f"/generate?latent={lid}")
    assert r.status_code == 404 and "epoch 2" in r.json()["detail"]
    assert c.get(f"/generate?latent={lid}&epoch=1").status_code == 200  # drawn with another epoch on request


def test_a_latent_combines_with_edit_and_amount_zero_is_the_plain_latent_face(projected):
    c, _, _, body = projected
    lid = body["latent"]
    plain = c.get(f"/generate?latent={lid}")
    zero = c.get(f"/generate?latent={lid}&edit=0:0,3:0")
    assert zero.status_code == 200 and zero.content == plain.content and zero.headers["etag"] == plain.headers["etag"]
    edited = c.get(f"/generate?latent={lid}&edit=0:8,2:-8")
    assert edited.status_code == 200, edited.text
    assert edited.headers["etag"] != plain.headers["etag"]
    # (the tiny test model barely depends on its noise: a visible edit is a fraction of a level)
    assert np.abs(pixels(edited.content).astype(int) - pixels(plain.content)).mean() > 0.05
    text = Image.open(io.BytesIO(edited.content)).text
    assert text["latent"] == lid and text["edit"] == "0:8.0,2:-8.0" and "seed" not in text
    walk = c.get(f"/interpolate?latent={lid}&seed_b=3&steps=3&edit=1:10")
    assert walk.status_code == 200, walk.text
    assert np.array_equal(pixels(walk.content)[2:98, 2:98],
                          pixels(c.get(f"/generate?latent={lid}&edit=1:10").content))
    assert c.get(f"/generate?latent={lid}&edit=99:1").status_code == 422
