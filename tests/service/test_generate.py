"""GET /generate and friends against a real app serving a real worker's checkpoints."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.service.stack import AUTH, client, submit, wait_for, wait_job

pytestmark = pytest.mark.slow


def pixels(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))


@pytest.fixture(scope="module")
def trained(stack):
    c = client(stack.apps[0][1])
    assert c.get("/generate").status_code == 503  # before any model: proven first, in this module
    job_id = submit(c, epochs=2)
    wait_job(c, job_id, {"succeeded"})
    return c, job_id


def test_no_model_yet_is_a_503_that_says_how_to_train(tmp_path_factory, redis):
    from tests.service.stack import Stack
    s = Stack(tmp_path_factory.mktemp("empty"), redis.url)
    try:
        c = client(s.start_app())
        r = c.get("/generate?seed=1")
        assert r.status_code == 503 and "POST /train" in r.json()["detail"] and "Retry-After" in r.headers
        assert c.get("/readyz").status_code == 503
    finally:
        s.stop()


def test_same_query_same_bytes_and_headers(trained):
    c, job_id = trained
    a, b = c.get("/generate?seed=42&n=64"), c.get("/generate?seed=42&n=64")
    assert a.status_code == 200 and a.headers["content-type"] == "image/png"
    assert a.content == b.content and a.headers["etag"] == b.headers["etag"]
    assert a.headers["x-checkpoint"] == f"{job_id}/epoch-0002.pt"
    assert a.headers["cache-control"] == "no-cache"
    assert Image.open(io.BytesIO(a.content)).size == (786, 786)
    assert c.get("/generate?seed=43&n=64").content != a.content


def test_face_i_does_not_depend_on_n(trained):
    c, _ = trained
    one = pixels(c.get("/generate?seed=7&n=1").content)
    grid = pixels(c.get("/generate?seed=7&n=64").content)
    assert one.shape == (96, 96, 3)  # a single face comes without the grid's gutter
    assert np.array_equal(one, grid[2:98, 2:98])


def test_concurrent_renders_batched_together_give_the_bytes_each_gives_alone(trained):
    """16 clients at once (the app's 4 ms window gathers them into shared forward passes) get
    exactly what the same faces are when asked one at a time. n faces with nrow=8 and nrow=n
    (n <= 8) are the same image under two cache keys, so each round renders afresh."""
    from concurrent.futures import ThreadPoolExecutor

    c, _ = trained
    queries = [f"seed={1000 + i}&n={1 + i % 3}" for i in range(16)]
    with ThreadPoolExecutor(16) as pool:
        together = list(pool.map(lambda q: c.get(f"/generate?{q}&nrow=8"), queries))
    alone = [c.get(f"/generate?{q}&nrow={q[-1]}") for q in queries]
    assert all(r.status_code == 200 and r.headers["x-cache"] == "miss" for r in together)
    for q, a, b in zip(queries, together, alone, strict=True):
        assert np.array_equal(pixels(a.content), pixels(b.content)), q


def test_variations_batch_with_generate_and_carry_their_provenance(trained):
    """/variations and /generate at once, through the real app's batcher: each variations grid
    is what it is alone, starts with the seed's face, and says where it came from."""
    from concurrent.futures import ThreadPoolExecutor

    c, job_id = trained
    queries = [f"/variations?seed={2000 + i}&n=4&spread=0.{i + 1}" for i in range(6)] + \
              [f"/generate?seed={2000 + i}&n=1" for i in range(6)]
    with ThreadPoolExecutor(12) as pool:
        together = list(pool.map(c.get, queries))
    assert all(r.status_code == 200 for r in together)
    for i in range(6):
        alone = c.get(queries[i])  # a cache hit now: the same bytes
        assert alone.content == together[i].content and alone.headers["etag"] == together[i].headers["etag"]
        assert np.array_equal(pixels(together[i].content)[2:98, 2:98], pixels(together[6 + i].content))
        text = Image.open(io.BytesIO(together[i].content)).text
        assert (text["kind"], text["seed"], text["spread"], text["job"], text["checkpoint"]) == (
            "variations", str(2000 + i), f"0.{i + 1}", job_id, "epoch-0002.pt")
    card = c.get(f"/jobs/{job_id}/card").json()
    assert [ck["epoch"] for ck in card["checkpoints"]][-1] == 2 and card["data"]["images"] > 0
    assert c.get("/variations?seed=1&spread=0").status_code == 422


def test_nearest_finds_training_images_in_the_workers_decoded_cache(trained):
    """The app searches the cache the real worker decoded (RUNS_DIR/_cache) and serves its images."""
    c, job_id = trained
    r = c.get("/nearest?seed=5&i=1&k=3")
    assert r.status_code == 200, r.text
    body = r.json()
    distances = [n["distance"] for n in body["neighbours"]]
    assert len(distances) == 3 and distances == sorted(distances) and body["reference"] > 0
    png = c.get(body["neighbours"][0]["url"])
    assert png.status_code == 200 and Image.open(io.BytesIO(png.content)).size == (96, 96)
    assert c.get(f"/jobs/{job_id}/training-images/{body['images']}.png").status_code == 404


def test_etag_revalidation_answers_304_without_a_body(trained):
    c, _ = trained
    r = c.get("/generate?seed=5&n=4")
    again = c.get("/generate?seed=5&n=4", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == r.headers["etag"]
    assert c.get("/generate?seed=5&n=4", headers={"If-None-Match": '"other"'}).status_code == 200


def test_a_pinned_job_and_epoch_is_cacheable_for_good(trained):
    c, job_id = trained
    r = c.get(f"/generate?seed=1&n=4&job={job_id}&epoch=1")
    assert r.status_code == 200 and "immutable" in r.headers["cache-control"]
    assert r.headers["x-checkpoint"] == f"{job_id}/epoch-0001.pt"
    assert c.get(f"/generate?seed=1&n=4&job={job_id}&epoch=9").status_code == 404
    assert c.get("/generate?seed=1&job=20990101-000000-abcdef").status_code == 404


def test_formats_best_of_truncation_and_interpolation(trained):
    c, _ = trained
    for fmt, media in (("jpeg", "image/jpeg"), ("webp", "image/webp")):
        r = c.get(f"/generate?seed=3&n=4&format={fmt}")
        assert r.status_code == 200 and r.headers["content-type"] == media
    best = c.get("/generate?seed=3&n=4&best_of=32&nrow=2")
    assert best.status_code == 200 and Image.open(io.BytesIO(best.content)).size == (198, 198)
    assert best.content != c.get("/generate?seed=3&n=4&nrow=2").content
    assert c.get("/generate?seed=3&n=4&truncation=0.5").status_code == 200
    strip = c.get("/interpolate?seed_a=1&seed_b=2&steps=6")
    assert strip.status_code == 200 and Image.open(io.BytesIO(strip.content)).size == (6 * 98 + 2, 100)
    gif = c.get("/interpolate?seed_a=1&seed_b=2&steps=4&format=gif")
    assert gif.headers["content-type"] == "image/gif" and Image.open(io.BytesIO(gif.content)).n_frames == 6


def test_a_newer_checkpoint_is_served_without_a_restart(stack, trained):
    c, first_job = trained
    before = c.get("/generate?seed=11&n=4")
    second = submit(c, epochs=1, seed=99)
    wait_job(c, second, {"succeeded"})
    after = wait_for(lambda: (r := c.get("/generate?seed=11&n=4")).headers["x-checkpoint"].startswith(second) and r,
                     10, "the new checkpoint to be picked up")
    assert after.content != before.content
    # pinning the first job brings its faces back, with no restart either
    r = c.post("/models/default", json={"job_id": first_job}, headers=AUTH)
    assert r.status_code == 200 and r.json()["job_id"] == first_job and r.json()["pinned"]
    assert c.get("/generate?seed=11&n=4").content == before.content
    assert c.get("/models/default").json()["job_id"] == first_job
    assert c.post("/models/default", json={"job_id": "20990101-000000-abcdef"}, headers=AUTH).status_code == 404


def test_readyz_and_metrics(trained):
    c, _ = trained
    ready = c.get("/readyz").json()
    assert ready["status"] == "ready" and ready["model"]["checkpoint"].startswith("epoch-")
    text = c.get("/metrics").text
    assert "dcgan_http_request_duration_seconds_bucket" in text and "dcgan_image_cache_hits_total" in text
    assert 'dcgan_jobs{state="succeeded"}' in text


def test_a_pin_survives_a_newer_job_and_checkpoint_pruning_and_unpin_falls_back(stack, trained):
    c, _ = trained
    a = submit(c, epochs=2, snapshot_epochs=[2], seed=21)
    wait_job(c, a, {"succeeded"})
    assert c.post("/models/default", json={"job_id": a, "epoch": 1}, headers=AUTH).status_code == 200
    b = submit(c, epochs=1, seed=22)  # a newer job succeeds: the pin holds
    wait_job(c, b, {"succeeded"})
    assert c.get("/generate?seed=5&n=1").headers["x-checkpoint"] == f"{a}/epoch-0001.pt"
    # extend the pinned job: pruning keeps the last 3 and the snapshot epochs, and the pin
    r = c.post(f"/jobs/{a}/resume", json={"epochs": 6}, headers=AUTH)
    assert r.status_code == 202
    wait_job(c, a, {"succeeded"})
    kept = [x["epoch"] for x in c.get(f"/jobs/{a}/checkpoints").json()["checkpoints"]]
    assert kept == [1, 2, 4, 5, 6]
    assert c.get("/generate?seed=5&n=1").headers["x-checkpoint"] == f"{a}/epoch-0001.pt"
    assert c.get("/readyz").json()["model"]["pinned"] is True
    # unpinned, with no SWD measured (swd_images 0): the newest checkpoint of the last succeeded job
    assert c.delete("/models/default", headers=AUTH).status_code == 204
    assert c.get("/generate?seed=5&n=1").headers["x-checkpoint"] == f"{a}/epoch-0006.pt"


def test_directions_then_an_edited_face(trained):
    c, job_id = trained
    # Earlier tests make newer jobs the default model: this one asks for the trained job by name.
    r = c.get(f"/directions?job={job_id}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["job_id"] == job_id and len(body["directions"]) == 16 and r.headers["x-checkpoint"].endswith(".pt")
    plain = c.get(f"/generate?job={job_id}&seed=7&n=4")
    # amount 0: the plain faces
    assert c.get(f"/generate?job={job_id}&seed=7&n=4&edit=0:0").content == plain.content
    edited = c.get(f"/generate?job={job_id}&seed=7&n=4&edit=0:6,1:-6")
    assert edited.status_code == 200 and edited.content != plain.content
    assert Image.open(io.BytesIO(edited.content)).text["edit"] == "0:6.0,1:-6.0"
    assert not np.array_equal(pixels(edited.content), pixels(plain.content))
    r = c.get(f"/generate?job={job_id}&seed=7&edit=16:1")
    assert r.status_code == 422 and "direction 16 does not exist" in r.json()["detail"][0]["msg"]
    assert c.get(f"/directions?job={job_id}").json() == body  # from the cache: the same


def test_the_workers_copy_rate_reaches_the_job_its_checkpoints_metrics_and_card(trained):
    """A job that measures quality: the real worker's reports and metrics rows carry the copy rate."""
    c, _ = trained
    job_id = submit(c, epochs=2, snapshot_epochs=[2], swd_images=16, seed=31)
    wait_job(c, job_id, {"succeeded"})
    listed = {x["epoch"]: x for x in c.get(f"/jobs/{job_id}/checkpoints").json()["checkpoints"]}
    assert listed[1]["copy_rate"] is None  # not a snapshot epoch: not measured
    rate = listed[2]["copy_rate"]
    assert 0 <= rate <= 1 and listed[2]["copy_distance"] > 0
    assert c.get(f"/jobs/{job_id}").json()["copy_rate"] == rate
    assert c.get(f"/jobs/{job_id}/metrics").json()["copy_rate"] == [rate]
    card = c.get(f"/jobs/{job_id}/card").json()
    assert [ck["copy_rate"] for ck in card["checkpoints"]] == [None, rate]
