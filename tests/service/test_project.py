"""POST /project and latent=ID against real app processes (uvicorn) sharing one RUNS_DIR: a
latent one process found is drawn by another, uploads are bounded on the wire, and the
gallery's "Find a face like this picture" in a real Chromium."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from model.projection import psnr
from tests.app.conftest import trained_job
from tests.helpers import write_blob_images
from tests.service.stack import AUTH, TOKEN, Stack, client

pytestmark = pytest.mark.slow


def pixels(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))


@pytest.fixture(scope="module")
def two_apps(tmp_path_factory):
    """Two app processes (no worker) serving one trained tiny job, with its decoded cache."""
    stack = Stack(tmp_path_factory.mktemp("project"), redis_url=None, MAX_BODY_BYTES="200000",
                  DCGAN_CACHE_DIR=os.environ["DCGAN_CACHE_DIR"])
    job_id = trained_job(stack.runs, write_blob_images(stack.data / "faces", 96)).job_id
    urls = [stack.start_app("app1"), stack.start_app("app2")]
    yield stack, job_id, urls
    stack.stop()


def test_a_latent_one_process_projects_is_drawn_by_another(two_apps):
    _, job_id, (one, two) = two_apps
    a, b = client(one), client(two)
    face = a.get("/generate?seed=11&n=1").content
    r = a.post("/project", content=face, headers={**AUTH, "Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    found = r.json()
    assert found["psnr"] >= 20 and found["job_id"] == job_id
    drawn = b.get(found["url"])  # the other process reads the stored latent
    assert drawn.status_code == 200 and drawn.content == a.get(found["url"]).content
    assert psnr(pixels(drawn.content), pixels(face)) >= 20
    assert Image.open(io.BytesIO(drawn.content)).text["latent"] == found["latent"]
    near = b.get(found["nearest_url"])
    assert near.status_code == 200 and near.json()["latent"] == found["latent"]
    assert b.get(f"/interpolate?latent={found['latent']}&seed_b=2&steps=3").status_code == 200


def test_uploads_are_bounded_on_the_wire(two_apps):
    _, _, (one, _) = two_apps
    c = client(one)

    def chunks():  # no Content-Length: the limit is found while reading
        for _ in range(50):
            yield b"\x89PNG\r\n\x1a\n" + b"\0" * 10_000
    headers = {**AUTH, "Content-Type": "image/png"}
    assert c.post("/project", content=chunks(), headers=headers).status_code == 413
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(jpeg, format="JPEG")
    lying = c.post("/project", content=jpeg.getvalue(), headers=headers)
    assert lying.status_code == 422 and "not a PNG image" in lying.json()["detail"]
    assert c.post("/project", content=jpeg.getvalue(), headers={"Content-Type": "image/jpeg"}).status_code == 401
    assert c.get("/healthz").status_code == 200


@pytest.mark.browser
def test_the_gallery_finds_a_face_like_an_uploaded_picture(two_apps, tmp_path):
    from tests.service.test_gallery import chromium
    _, _, (one, _) = two_apps
    picture = tmp_path / "me.png"
    picture.write_bytes(client(one).get("/generate?seed=23&n=1").content)
    with chromium({"width": 1280, "height": 1000}) as (page, errors):
        page.goto(one + "/", wait_until="networkidle")
        page.set_input_files("#project-file", str(picture))
        page.click("#project-form button[type=submit]")
        page.wait_for_selector("#token-dialog[open]")
        page.fill("#token-input", TOKEN)
        page.click("#token-form button[type=submit]")
        page.wait_for_function("() => { const f = document.querySelector('#project-face');"
                               " return !document.querySelector('#project-pair').hidden && f.complete"
                               " && f.naturalWidth === 96; }", timeout=120_000)
        page.wait_for_function("() => [...document.querySelectorAll('#project-nearest img')]"
                               ".filter(i => i.complete && i.naturalWidth === 96).length === 8")
        caption = page.locator("#project-caption").inner_text()
        assert "dB PSNR" in caption and float(caption.split(": ")[1].split(" ")[0]) >= 20
        assert "typically" in page.locator("#project-nearest-status").inner_text()
        page.locator("#try").screenshot(path=str(tmp_path / "project.png"))
        assert errors == []
