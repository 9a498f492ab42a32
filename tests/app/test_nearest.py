"""GET /nearest and the training images it points to, on a real trained job's decoded cache."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from model.nearest import CHUNK, NearestIndex, block_features


def test_a_training_image_is_its_own_nearest_and_distances_ascend():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (CHUNK + 50, 3, 96, 96), dtype=np.uint8)  # crosses a chunk boundary
    index = NearestIndex.build(images)
    assert index.feats.shape == (CHUNK + 50, 432) and index.feats.dtype == np.uint8
    for target in (0, 7, CHUNK + 3):
        found = index.nearest(block_features(images[target:target + 1])[0], 5)
        assert found[0][0] == target and found[0][1] < 11  # rounding of the stored means only: <= sqrt(432)/2
        assert [d for _, d in found] == sorted(d for _, d in found) and len(found) == 5
    twin = images.copy()
    twin[10] = images[3]  # a copy in the data: the reference (real-to-real) sees a distance of 0 for it
    assert NearestIndex.build(twin).nearest(block_features(images[3:4])[0], 2)[1][1] < 11
    assert index.reference() > 100  # random images are far apart


def test_nearest_answers_ascending_neighbours_with_urls_that_serve_the_images(served):
    c, job_id = served
    r = c.get("/nearest?seed=3&i=2&k=5")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["job_id"] == job_id and body["i"] == 2 and len(body["neighbours"]) == 5
    distances = [n["distance"] for n in body["neighbours"]]
    assert distances == sorted(distances) and body["reference"] > 0 and "block" in body["metric"]
    assert body["images"] == 96
    first = body["neighbours"][0]
    assert first["url"] == f"/jobs/{job_id}/training-images/{first['index']}.png"
    png = c.get(first["url"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(png.content)) as im:
        assert im.size == (96, 96) and im.text["kind"] == "training image"
    again = c.get("/nearest?seed=3&i=2&k=5")
    assert again.json() == body and again.headers["x-cache"] == "hit"


def test_a_training_image_served_is_found_at_distance_zero(served):
    """Search with the training image itself: closes the loop between the two endpoints."""
    c, job_id = served
    from app.nearest_api import _indexes
    c.get("/nearest?seed=1&k=1")
    index = next(iter(_indexes.values()))
    px = np.asarray(Image.open(io.BytesIO(c.get(f"/jobs/{job_id}/training-images/17.png").content)))
    assert index.nearest(block_features(px.transpose(2, 0, 1)[None])[0], 1)[0][0] == 17


@pytest.mark.parametrize("query", ["k=0", "k=33", "i=-1", "i=16777216", "seed=-1", "k=2.0", "truncation=0"])
def test_bad_nearest_parameters_are_422(served, query):
    c, _ = served
    assert c.get(f"/nearest?{query}").status_code == 422


def test_unknown_images_and_jobs_are_404(served):
    c, job_id = served
    assert c.get(f"/jobs/{job_id}/training-images/96.png").status_code == 404
    assert c.get("/jobs/20990101-000000-abcdef/training-images/0.png").status_code == 404
    assert c.get(f"/jobs/{job_id}/training-images/-1.png").status_code == 422


def test_a_damaged_job_record_still_serves_its_training_images_and_card_never_500s(served):
    c, job_id = served
    record = c.app.state.registry.runs_dir / job_id / "job.json"
    good = c.get(f"/jobs/{job_id}/training-images/3.png").content
    record.write_bytes(b"{not json")
    assert c.get(f"/jobs/{job_id}/training-images/3.png").content == good
    assert c.get(f"/jobs/{job_id}/card").status_code < 500
