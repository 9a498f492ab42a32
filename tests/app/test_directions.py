"""GET /directions and edit=K:AMOUNT on the image routes, against a trained model in-process."""
from __future__ import annotations

import io
import os
import shutil
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app import directions as app_directions
from app.main import create_app
from model import directions as model_directions
from tests.app.conftest import make_settings


def _client(tmp_path, served_runs, queue, **overrides) -> tuple[TestClient, str]:
    runs, job_id = served_runs
    settings = make_settings(tmp_path, **overrides)
    shutil.copytree(runs, settings.runs_dir)
    return TestClient(create_app(settings, enqueue=queue)), job_id


def _pixels(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"), dtype=np.int16)


def _cache_files(c: TestClient) -> list:
    folder = c.app.state.settings.cache_dir / "directions"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_directions_lists_sixteen_by_variance_and_caches_them_by_checksum(served):
    c, job_id = served
    r = c.get("/directions")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["job_id"] == job_id and body["checkpoint"] == "epoch-0002.pt" and body["epoch"] == 2
    assert r.headers["x-checkpoint"] == f"{job_id}/epoch-0002.pt"
    assert [d["index"] for d in body["directions"]] == list(range(16))
    shares = [d["variance"] for d in body["directions"]]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1
    assert body["max_amount"] == 10 and body["max_edits"] == 8 and body["samples"] == 2000
    files = _cache_files(c)
    assert [f.name for f in files] == [body["checksum"].replace(":", "-") + ".json"]
    assert c.get(f"/directions?job={job_id}&epoch=2").json() == body
    epoch1 = c.get(f"/directions?job={job_id}&epoch=1").json()
    assert epoch1["checksum"] != body["checksum"] and epoch1["directions"] != body["directions"]
    assert len(_cache_files(c)) == 2


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_amount_zero_is_the_plain_face_byte_for_byte(tmp_path, served_runs, queue, backend):
    c, job_id = _client(tmp_path, served_runs, queue, render_backend=backend)
    with c:
        for route, query in [("generate", "seed=5&n=4&nrow=2"), ("variations", "seed=5&n=3"),
                             ("interpolate", "seed_a=1&seed_b=2&steps=3"), ("generate", "seed=5&n=2&best_of=4")]:
            plain = c.get(f"/{route}?{query}")
            for edit in ("0:0", "3:0,1:-0.0", "15:0.000"):
                edited = c.get(f"/{route}?{query}&edit={edit}")
                assert edited.status_code == 200, edited.text
                assert edited.content == plain.content and edited.headers["etag"] == plain.headers["etag"], \
                    (route, edit)
        assert _cache_files(c) == []  # nothing to move: the directions were not even needed


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_an_edit_moves_every_face_and_says_so_in_the_png(tmp_path, served_runs, queue, backend):
    c, job_id = _client(tmp_path, served_runs, queue, render_backend=backend)
    with c:
        plain = c.get("/generate?seed=5&n=4&nrow=2")
        edited = c.get("/generate?seed=5&n=4&nrow=2&edit=0:8,2:-8")
        assert edited.status_code == 200, edited.text
        assert edited.headers["etag"] != plain.headers["etag"]
        diff = np.abs(_pixels(edited.content) - _pixels(plain.content))
        faces = [diff[y:y + 96, x:x + 96] for y in (2, 100) for x in (2, 100)]  # the 2x2 grid's tiles
        # (the tiny test model barely depends on its noise: another seed's face is ~0.2 levels away)
        assert all(f.mean() > 0.05 for f in faces), [f.mean() for f in faces]
        text = Image.open(io.BytesIO(edited.content)).text
        assert text["edit"] == "0:8.0,2:-8.0" and "edit" not in Image.open(io.BytesIO(plain.content)).text
        # the same edits in another order, or with a zero among them, are the same query
        again = c.get("/generate?seed=5&n=4&nrow=2&edit=2:-8.0,5:0,0:8.000")
        assert again.content == edited.content and again.headers["etag"] == edited.headers["etag"]
        # face i of a grid is face i alone, edited the same way
        one = c.get("/generate?seed=5&n=1&edit=0:8,2:-8")
        assert np.array_equal(_pixels(one.content), _pixels(edited.content)[2:98, 2:98])
        for route, query in [("variations", "seed=5&n=3"), ("interpolate", "seed_a=1&seed_b=2&steps=3"),
                             ("generate", "seed=5&n=2&best_of=4")]:
            a, b = c.get(f"/{route}?{query}"), c.get(f"/{route}?{query}&edit=1:10")
            assert b.status_code == 200 and np.abs(_pixels(a.content) - _pixels(b.content)).mean() > 0.05, route
        # "more like this" of an edited face starts from that face
        tile0 = _pixels(c.get("/variations?seed=5&n=3&edit=1:10").content)[2:98, 2:98]
        assert np.array_equal(tile0, _pixels(c.get("/generate?seed=5&n=1&edit=1:10").content))


def test_bad_edits_are_422_naming_the_problem(served):
    c, _ = served
    cases = {"0": "is not DIRECTION:AMOUNT", "0:1e2": "is not DIRECTION:AMOUNT", "0:nan": "is not DIRECTION:AMOUNT",
             "0:1,": "is not DIRECTION:AMOUNT", "0:10.5": "out of range", "0:-11": "out of range",
             "1:1,1:2": "edited twice", ",".join(f"{k}:1" for k in range(9)): "at most 8",
             "16:1": "direction 16 does not exist: this model has 16 (0 to 15)",
             "99:0": "direction 99 does not exist"}
    for edit, why in cases.items():
        for route in ("generate", "variations", "interpolate"):
            r = c.get(f"/{route}", params={"edit": edit})
            assert r.status_code == 422, (route, edit, r.text)
            detail = r.json()["detail"]
            assert detail[0]["loc"] == ["query", "edit"] and why in detail[0]["msg"], (edit, detail)
    assert c.get("/generate", params={"edit": "0:1" * 100}).status_code == 422  # over max_length


def test_a_damaged_or_hostile_cache_file_is_computed_again(tmp_path, served_runs, queue):
    c, job_id = _client(tmp_path, served_runs, queue)
    with c:
        good = c.get("/directions").json()
        path = _cache_files(c)[0]
        want = path.read_bytes()
    for damage in (b"", b"{not json", want[:-40], want.replace(b'"scales": [', b'"scales": [NaN, '), b"[" * 200_000):
        path.write_bytes(damage)
        c, _ = _client(tmp_path / f"again{len(damage)}", served_runs, queue)
        (c.app.state.settings.cache_dir / "directions").mkdir(parents=True)
        shutil.copy(path, c.app.state.settings.cache_dir / "directions" / path.name)
        with c:
            r = c.get("/directions")
            assert r.status_code == 200 and r.json()["directions"] == good["directions"]
            assert c.get("/generate?seed=1&n=1&edit=0:1").status_code == 200
            assert _cache_files(c)[0].read_bytes() == want  # replaced by a good one
    # not a file at all: a folder where the cache file goes cannot be replaced, and is no 500 either
    c, _ = _client(tmp_path / "folder", served_runs, queue)
    (c.app.state.settings.cache_dir / "directions" / path.name).mkdir(parents=True)
    with c:
        assert c.get("/directions").json()["directions"] == good["directions"]


def test_a_fifo_in_place_of_the_cache_file_does_not_block(tmp_path, served_runs, queue):
    c, _ = _client(tmp_path, served_runs, queue)
    with c:
        first = c.get("/directions").json()
        name = _cache_files(c)[0].name
    c2, _ = _client(tmp_path / "b", served_runs, queue)
    (c2.app.state.settings.cache_dir / "directions").mkdir(parents=True)
    os.mkfifo(c2.app.state.settings.cache_dir / "directions" / name)
    with c2:
        assert c2.get("/directions").json()["directions"] == first["directions"]
        assert _cache_files(c2)[0].is_file()  # the FIFO was replaced by the computed file


def test_concurrent_first_requests_share_one_computation_and_a_full_queue_is_503(tmp_path, served_runs, queue,
                                                                                  monkeypatch):
    calls = []
    real = model_directions.compute_directions

    def counted(g, checksum):
        calls.append(checksum)
        return real(g, checksum)
    monkeypatch.setattr(app_directions, "compute_directions", counted)
    c, _ = _client(tmp_path, served_runs, queue, generate_concurrency=1, generate_queue=0)
    answers, edited = [], []
    with c:
        app_directions._compute_lock.acquire()  # hold the computation back while the requests arrive
        try:
            threads = [threading.Thread(target=lambda: answers.append(c.get("/directions"))) for _ in range(3)]
            # an edited face needs the same directions: it waits for that computation too
            threads.append(threading.Thread(target=lambda: edited.append(c.get("/generate?seed=1&n=1&edit=0:1"))))
            for t in threads:
                t.start()
            deadline = time.monotonic() + 20
            while c.app.state.renderer._waiting < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.3)
            busy = c.get("/generate?seed=1&n=1")  # another render: no slot and no queue left
        finally:
            app_directions._compute_lock.release()
        for t in threads:
            t.join(60)
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    assert [r.status_code for r in answers] == [200] * 3 and len({r.text for r in answers}) == 1
    assert [r.status_code for r in edited] == [200]
    assert len(calls) == 1
