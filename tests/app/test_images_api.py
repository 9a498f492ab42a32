"""/generate, /interpolate, /models/default, /readyz and /metrics against a real trained job."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from tests.app.conftest import AUTH


def pixels(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))


def test_generate_is_a_deterministic_png_naming_its_checkpoint(served):
    c, job_id = served
    a, b = c.get("/generate?seed=42&n=64"), c.get("/generate?seed=42&n=64")
    assert a.status_code == 200 and a.headers["content-type"] == "image/png"
    assert a.content == b.content and a.headers["etag"] == b.headers["etag"]
    assert a.headers["x-checkpoint"] == f"{job_id}/epoch-0002.pt" and a.headers["cache-control"] == "no-cache"
    assert (a.headers["x-cache"], b.headers["x-cache"]) == ("miss", "hit")
    assert Image.open(io.BytesIO(a.content)).size == (786, 786)
    assert c.get("/generate?seed=43&n=64").content != a.content


def test_face_i_of_a_seed_does_not_depend_on_n(served):
    c, _ = served
    assert np.array_equal(pixels(c.get("/generate?seed=7&n=1").content),
                          pixels(c.get("/generate?seed=7&n=16&nrow=4").content)[2:98, 2:98])


def test_a_matching_etag_is_a_304_without_a_body(served):
    c, _ = served
    tag = c.get("/generate?seed=5&n=4").headers["etag"]
    r = c.get("/generate?seed=5&n=4", headers={"If-None-Match": tag})
    assert r.status_code == 304 and r.content == b""


def test_a_named_job_and_epoch_is_cacheable_for_good_and_a_missing_one_404(served):
    c, job_id = served
    r = c.get(f"/generate?seed=1&n=4&job={job_id}&epoch=1")
    assert r.status_code == 200 and "immutable" in r.headers["cache-control"]
    assert r.headers["x-checkpoint"] == f"{job_id}/epoch-0001.pt"
    missing = c.get(f"/generate?seed=1&job={job_id}&epoch=9")
    assert missing.status_code == 404
    assert missing.json()["detail"] == f"job {job_id} has no checkpoint for epoch 9; its epochs: 1-2"
    assert c.get("/generate?seed=1&job=20990101-000000-abcdef").status_code == 404


def test_without_any_model_generate_and_readyz_are_503(client):
    r = client.get("/generate?seed=1")
    assert r.status_code == 503 and "POST /train" in r.json()["detail"] and r.headers["retry-after"]
    assert client.get("/readyz").status_code == 503


def test_readyz_names_the_served_checkpoint(served):
    c, job_id = served
    ready = c.get("/readyz").json()
    assert ready["status"] == "ready" and ready["model"] == {
        "job_id": job_id, "checkpoint": "epoch-0002.pt", "epoch": 2, "pinned": False, "swd": None,
        "reason": f"the newest checkpoint of the last succeeded job {job_id}: no SWD was measured on its data"}


def test_pinning_an_epoch_makes_it_the_default(served):
    c, job_id = served
    r = c.post("/models/default", json={"job_id": job_id, "epoch": 1}, headers=AUTH)
    assert r.status_code == 200 and r.json()["pinned"] and r.json()["epoch"] == 1
    assert c.get("/generate?seed=3&n=1").headers["x-checkpoint"] == f"{job_id}/epoch-0001.pt"
    assert c.get("/models/default").json()["checkpoint"] == "epoch-0001.pt"
    assert c.post("/models/default", json={"job_id": job_id, "epoch": 7}, headers=AUTH).status_code == 404
    assert c.post("/models/default", json={"job_id": "20990101-000000-abcdef"}, headers=AUTH).status_code == 404


def test_interpolation_strip_and_gif(served):
    c, _ = served
    strip = c.get("/interpolate?seed_a=1&seed_b=2&steps=6")
    assert strip.status_code == 200 and Image.open(io.BytesIO(strip.content)).size == (6 * 98 + 2, 100)
    gif = c.get("/interpolate?seed_a=1&seed_b=2&steps=4&format=gif")
    assert gif.headers["content-type"] == "image/gif" and Image.open(io.BytesIO(gif.content)).n_frames == 6


def test_snapshots_and_metrics_series_of_a_job(served):
    c, job_id = served
    png = c.get(f"/jobs/{job_id}/snapshots/2.png")
    assert png.status_code == 200 and Image.open(io.BytesIO(png.content)).size == (786, 786)
    missing = c.get(f"/jobs/{job_id}/snapshots/3.png")
    assert missing.status_code == 404
    assert missing.json()["detail"] == f"job {job_id} has no snapshot for epoch 3; its snapshots: epochs 1-2"
    series = c.get(f"/jobs/{job_id}/metrics").json()
    assert series["epochs"] == [1, 2] and len(series["steps"]) == 6 and len(series["loss_d"]) == 2


def test_metrics_lines_of_the_wrong_shape_are_skipped_by_the_series_and_the_checkpoints(served, tmp_path):
    c, job_id = served
    runs = Path(c.app.state.settings.runs_dir)
    with open(runs / job_id / "metrics.jsonl", "a") as f:
        f.write("[" * 50_000 + "\n" + '{"kind": "epoch", "epoch": "3", "swd": "low"}\n'
                '{"kind": ["interval"], "step": 9}\n{"kind": "epoch", "epoch": 3, "step": 999, "loss_d": NaN}\n')
    series = c.get(f"/jobs/{job_id}/metrics")
    assert series.status_code == 200 and series.json()["epochs"] == [1, 2, 3]
    assert series.json()["loss_d"][2] is None
    assert c.get(f"/jobs/{job_id}/checkpoints").status_code == 200


def test_prometheus_metrics_count_jobs_and_requests(served):
    c, _ = served
    c.get("/generate?seed=1&n=1")
    text = c.get("/metrics").text
    assert 'dcgan_jobs{state="succeeded"} 1.0' in text and "dcgan_image_cache_misses_total 1.0" in text
    assert 'route="/generate"' in text


def test_the_checkpoint_list_says_which_is_pinned_and_which_is_served(served):
    c, job_id = served
    listed = c.get(f"/jobs/{job_id}/checkpoints").json()["checkpoints"]
    assert [(x["epoch"], x["name"], x["served"], x["pinned"]) for x in listed] == [
        (1, "epoch-0001.pt", False, False), (2, "epoch-0002.pt", True, False)]
    assert all(x["bytes"] > 0 and x["modified_at"] > 0 for x in listed)
    c.post("/models/default", json={"job_id": job_id, "epoch": 1}, headers=AUTH)
    listed = c.get(f"/jobs/{job_id}/checkpoints").json()["checkpoints"]
    assert [(x["served"], x["pinned"]) for x in listed] == [(True, True), (False, False)]
    assert c.get("/jobs/20990101-000000-abcdef/checkpoints").status_code == 404


def test_unpin_falls_back_to_the_newest_checkpoint_of_the_last_succeeded_job(served):
    c, job_id = served
    c.post("/models/default", json={"job_id": job_id, "epoch": 1}, headers=AUTH)
    assert c.delete("/models/default").status_code == 401
    assert c.delete("/models/default", headers=AUTH).status_code == 204
    info = c.get("/models/default").json()
    assert (info["epoch"], info["pinned"]) == (2, False)


def test_deleting_the_pinned_job_unpins_it(served):
    c, job_id = served
    c.post("/models/default", json={"job_id": job_id}, headers=AUTH)
    assert c.delete(f"/jobs/{job_id}", headers=AUTH).status_code == 204
    assert c.get("/models/default").status_code == 503 and c.get("/generate?seed=1&n=1").status_code == 503


def test_the_grid_of_training_images_is_served(served):
    c, job_id = served
    r = c.get(f"/jobs/{job_id}/reals.png")
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (786, 786)


def _is_integer(schema: dict) -> bool:
    return schema.get("type") == "integer" or any(_is_integer(s) for s in schema.get("anyOf", []))


def test_every_integer_parameter_refuses_a_number_written_as_a_float(served):
    """epoch=1.0 is a client bug, not epoch 1: every integer in a query or path says so by name
    (pydantic alone reads the text "1.0" as 1)."""
    c, job_id = served
    valid = {"job_id": job_id, "seeds": "1", "epoch": "1"}
    tried = []
    for path, methods in c.get("/openapi.json").json()["paths"].items():
        op = methods.get("get")
        if op is None:
            continue
        for p in op.get("parameters", []):
            if p["in"] not in ("query", "path") or not _is_integer(p["schema"]):
                continue
            for written in ("1.0", "2e0", "1.5"):
                values = {**valid, p["name"]: written}
                url = path.format(**{k: v for k, v in values.items() if "{" + k + "}" in path})
                query = {q["name"]: values[q["name"]] for q in op["parameters"]
                         if q["in"] == "query" and (q.get("required") or q["name"] == p["name"])}
                r = c.get(url, params=query, headers=AUTH)
                assert r.status_code == 422, (path, p["name"], written, r.status_code)
                assert [e["loc"] for e in r.json()["detail"]] == [[p["in"], p["name"]]], r.text
            tried.append((path, p["name"]))
    assert {("/generate", "n"), ("/generate", "seed"), ("/jobs/{job_id}/export", "epoch"),
            ("/faces.zip", "epoch"), ("/jobs/{job_id}/snapshots/{epoch}.png", "epoch")} <= set(tried), tried


def test_the_cpu_renders_with_onnxruntime_unless_told_torch_and_the_etag_says_which(served, tmp_path,
                                                                                      served_runs, queue):
    import shutil

    from fastapi.testclient import TestClient

    from app.main import create_app
    from model.backends import OnnxGenerator
    from tests.app.conftest import make_settings

    c, _ = served
    runs, _ = served_runs
    settings = make_settings(tmp_path / "torch", render_backend="torch")
    shutil.copytree(runs, settings.runs_dir)
    with TestClient(create_app(settings, enqueue=queue)) as t:
        by_ort, by_torch = c.get("/generate?seed=3&n=16"), t.get("/generate?seed=3&n=16")
        assert t.app.state.registry.backend == "torch" and c.app.state.registry.backend == "onnxruntime"
        assert isinstance(c.app.state.registry.get(None, None).g, OnnxGenerator)
    assert by_ort.status_code == by_torch.status_code == 200
    assert by_ort.headers["etag"] != by_torch.headers["etag"]  # not promised to be bit for bit the same
    diff = np.abs(pixels(by_ort.content).astype(int) - pixels(by_torch.content).astype(int))
    assert diff.max() <= 1  # the backends' stated tolerance: one level of 8-bit colour at most


def test_a_rendered_answer_says_where_its_time_went_and_a_cached_one_does_not(served):
    c, _ = served
    miss, hit = c.get("/generate?seed=11&n=3"), c.get("/generate?seed=11&n=3")
    parts = [p.split(";")[0].strip() for p in miss.headers["server-timing"].split(",")]
    assert parts == ["wait", "noise", "g", "encode"]
    assert hit.headers["x-cache"] == "hit" and "server-timing" not in hit.headers
