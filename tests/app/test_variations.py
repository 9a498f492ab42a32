"""GET /variations: faces near face 0 of a seed, deterministic, rendered and cached like /generate."""
from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from model.sampling import sample_noise, variation_noise
from tests.app.conftest import make_settings


def tiles(body: bytes, side: int = 96, pad: int = 2) -> list[np.ndarray]:
    """The faces of a grid, row by row (as make_grid lays them out)."""
    px = np.asarray(Image.open(io.BytesIO(body)).convert("RGB")).astype(int)
    if px.shape[:2] == (side, side):  # a one-face grid has no gutters
        return [px]
    rows, cols = (px.shape[0] - pad) // (side + pad), (px.shape[1] - pad) // (side + pad)
    step = side + pad
    return [px[pad + r * step:pad + r * step + side, pad + c * step:pad + c * step + side]
            for r in range(rows) for c in range(cols)]


def test_variations_start_with_the_seeds_face_and_stay_near_it(served):
    c, job_id = served
    r = c.get("/variations?seed=42&n=8&nrow=4&spread=0.3")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["x-checkpoint"] == f"{job_id}/epoch-0002.pt" and r.headers["x-cache"] == "miss"
    faces = tiles(r.content)
    assert len(faces) == 8
    assert np.array_equal(faces[0], tiles(c.get("/generate?seed=42&n=1").content)[0])  # tile 0: the face itself
    assert all(not np.array_equal(faces[0], f) for f in faces[1:])  # the others are not copies
    far = tiles(c.get("/variations?seed=42&n=8&nrow=4&spread=2").content)
    near_gap = np.mean([np.abs(f - faces[0]).mean() for f in faces[1:]])
    far_gap = np.mean([np.abs(f - far[0]).mean() for f in far[1:]])
    assert near_gap < far_gap  # spread moves faces further from the seed's face
    text = Image.open(io.BytesIO(r.content)).text
    assert (text["kind"], text["seed"], text["n"], text["nrow"], text["spread"], text["job"]) == (
        "variations", "42", "8", "4", "0.3", job_id)


def test_variations_are_deterministic_cached_and_tile_k_does_not_depend_on_n(served):
    c, _ = served
    a, b = c.get("/variations?seed=7&n=4"), c.get("/variations?seed=7&n=4")
    assert a.content == b.content and a.headers["etag"] == b.headers["etag"]
    assert (a.headers["x-cache"], b.headers["x-cache"]) == ("miss", "hit")
    assert [p.split(";")[0].strip() for p in a.headers["server-timing"].split(",")] == ["wait", "noise", "g", "encode"]
    assert c.get("/variations?seed=7&n=4", headers={"If-None-Match": a.headers["etag"]}).status_code == 304
    assert a.headers["etag"] != c.get("/generate?seed=7&n=4").headers["etag"]
    assert a.headers["etag"] != c.get("/variations?seed=7&n=4&spread=0.31").headers["etag"]
    wide = tiles(c.get("/variations?seed=7&n=6&nrow=6").content)
    assert all(np.array_equal(x, y) for x, y in zip(tiles(a.content), wide[:4], strict=True))


def test_variation_noise_rows_are_their_own_and_row_0_is_the_face():
    rows = variation_noise(5, 6, 100, 0.5)
    assert torch.equal(rows[0], sample_noise(5, [0], 100)[0])
    assert torch.equal(variation_noise(5, 3, 100, 0.5), rows[:3])
    assert not torch.equal(rows[1], sample_noise(5, [1], 100)[0])  # not /generate's face 1
    assert abs(float(rows[1:].std()) - 1) < 0.1  # still standard normal draws, as G was trained on
    assert torch.equal(variation_noise(5, 2, 100, 0.5, truncation=0.7)[0], sample_noise(5, [0], 100, 0.7)[0])


@pytest.mark.parametrize("query,name", [
    ("n=0", "n"), ("n=257", "n"), ("n=2.0", "n"), ("spread=0", "spread"), ("spread=-1", "spread"),
    ("spread=3", "spread"), ("spread=nan", "spread"), ("spread=inf", "spread"), ("seed=-1", "seed"),
    ("seed=4294967296", "seed"), ("nrow=0", "nrow"), ("format=gif", "format"), ("truncation=0", "truncation"),
    ("epoch=0", "epoch")])
def test_bad_variation_parameters_are_422_naming_them(served, query, name):
    c, _ = served
    r = c.get(f"/variations?seed=1&{query}")
    assert r.status_code == 422 and name in r.text


def test_n_is_capped_by_the_apps_max_n(served_runs, tmp_path, queue):
    runs, _ = served_runs
    settings = make_settings(tmp_path, max_n=4)
    shutil.copytree(runs, settings.runs_dir)
    with TestClient(create_app(settings, enqueue=queue)) as c:
        assert c.get("/variations?seed=1&n=4").status_code == 200
        assert c.get("/variations?seed=1&n=5").status_code == 422
