"""Hostile and odd input: path escapes, odd image files, floods, CORS."""
from __future__ import annotations

import concurrent.futures
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import write_blob_images
from tests.service.stack import AUTH, TINY_JOB, Redis, Stack, client, wait_job

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent


def test_nothing_outside_data_root_or_runs_dir_is_ever_opened(tmp_path):
    redis = Redis(tmp_path / "redis")
    audit = tmp_path / "audit.log"
    secret = tmp_path / "secret"
    secret.mkdir()
    Image.new("RGB", (96, 96)).save(secret / "private.png")
    (secret / "passwords.txt").write_text("hunter2")
    stack = Stack(tmp_path / "stack", redis.url, DCGAN_AUDIT_LOG=str(audit),
                  PYTHONPATH=f"{HERE / 'audit'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    (stack.data / "link").symlink_to(secret, target_is_directory=True)
    (stack.data / "ok").mkdir()
    (stack.data / "ok" / "inner-link").symlink_to(secret, target_is_directory=True)
    try:
        c = client(stack.start_app())
        hostile_dirs = ["../secret", "/etc", str(secret), "link", "link/", "ok/inner-link", "ok/../link",
                        "%2e%2e/secret", "..%2fsecret", "ok/\u0000/x", "ok\\..\\..\\secret", "./../secret",
                        "ok/inner-link/../../secret"]
        for d in hostile_dirs:
            r = c.post("/train", json={"data_dir": d}, headers=AUTH)
            assert r.status_code in (404, 422), (d, r.status_code, r.text)
        for path in ["/jobs/..%2f..%2fsecret", "/jobs/%2e%2e/snapshots/1.png", "/jobs/..%2Fsecret/metrics",
                     "/jobs/20260101-000000-000000%00/metrics", "/generate?job=../secret",
                     "/generate?job=..%2f..%2fsecret&epoch=1", "/static/..%2f..%2fsecret/passwords.txt",
                     "/static/../../secret/passwords.txt", "/jobs/20260101-000000-000000/snapshots/..%2f1.png"]:
            r = c.get(path)
            assert 400 <= r.status_code < 500, (path, r.status_code)
            assert b"hunter2" not in r.content
    finally:
        stack.stop()
        redis.stop()
    opened = audit.read_text().splitlines()
    assert opened, "the audit hook saw nothing: the test would prove nothing"
    touched = [line for line in opened if str(secret) in line or "/etc/passwd" in line]
    assert touched == []


def test_a_folder_of_odd_files_trains_on_the_usable_ones_and_says_why_others_were_skipped(stack):
    folder = stack.data / "odd"
    write_blob_images(folder, 16, ext="jpg")
    sub = folder / "class0"
    (sub / "zero.jpg").write_bytes(b"")
    (sub / "truncated.jpg").write_bytes((sub / "00000.jpg").read_bytes()[:200])
    (sub / "text.png").write_text("I am not a PNG")
    Image.new("RGB", (1, 1), (9, 9, 9)).save(sub / "one-pixel.png")
    Image.fromarray((np.random.default_rng(0).random((3000, 4000, 3)) * 255).astype(np.uint8)).save(
        sub / "huge.jpg", quality=80)
    Image.new("L", (80, 120), 100).save(sub / "grey.png")
    Image.new("CMYK", (100, 100), (0, 200, 0, 0)).save(sub / "cmyk.jpg")
    Image.fromarray(np.full((90, 90), 40000, dtype=np.uint16)).save(sub / "deep.png")
    Image.new("RGBA", (96, 96), (255, 0, 0, 128)).save(sub / "alpha.png")
    frames = [Image.new("RGB", (64, 64), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(sub / "anim.gif", save_all=True, append_images=frames[1:], loop=0)
    c = client(stack.apps[0][1])
    tiny = {k: v for k, v in TINY_JOB.items() if k not in ("dataset", "synthetic_images")}
    r = c.post("/train", json={**tiny, "data_dir": "odd", "epochs": 1}, headers=AUTH)
    assert r.status_code == 202, r.text
    job = wait_job(c, r.json()["job_id"], {"succeeded"}, timeout=180)
    ds = job["dataset"]
    assert ds["images"] == 16 + 6  # blobs + huge, grey, cmyk, deep, alpha, anim
    assert ds["skipped"] == 4
    assert ds["skipped_by_reason"] == {"empty file": 1, "truncated": 1, "not an image": 1, "smaller than 8px": 1}
    assert {name for name, _ in ds["skipped_examples"]} == {
        "class0/zero.jpg", "class0/truncated.jpg", "class0/text.png", "class0/one-pixel.png"}


def test_too_many_queued_jobs_is_429_with_retry_after(tmp_path, redis):
    stack = Stack(tmp_path, redis.url, MAX_ACTIVE_JOBS="2")  # no worker: jobs stay queued
    try:
        c = client(stack.start_app())
        for _ in range(2):
            assert c.post("/train", json=TINY_JOB, headers=AUTH).status_code == 202
        r = c.post("/train", json=TINY_JOB, headers=AUTH)
        assert r.status_code == 429 and r.headers["retry-after"] and "already queued or running" in r.text
        assert len(c.get("/jobs").json()["jobs"]) == 2
    finally:
        stack.stop()


def test_a_generate_flood_gets_503_retry_after_not_a_pile_up(stack, tmp_path, redis):
    import shutil
    busy = Stack(tmp_path, redis.url, GENERATE_CONCURRENCY="1", GENERATE_QUEUE="1")
    try:
        # serve the module stack's trained model from a second, deliberately narrow app
        wait_job(client(stack.apps[0][1]), _any_succeeded(stack), {"succeeded"})
        shutil.copytree(stack.runs, busy.runs, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("_broker", "_cache", "_synthetic"))
        url = busy.start_app()

        def get(seed):
            with client(url) as c:
                return c.get(f"/generate?seed={seed}&n=256&nrow=16")

        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(get, range(1000, 1012)))
        codes = [r.status_code for r in answers]
        assert set(codes) <= {200, 503} and 200 in codes and 503 in codes, codes
        assert all(r.headers.get("retry-after") for r in answers if r.status_code == 503)
    finally:
        busy.stop()


def _any_succeeded(stack) -> str:
    c = client(stack.apps[0][1])
    jobs = [j for j in c.get("/jobs").json()["jobs"] if j["state"] == "succeeded"]
    if jobs:
        return jobs[0]["job_id"]
    r = c.post("/train", json=TINY_JOB, headers=AUTH)
    return r.json()["job_id"]


def test_cors_allows_only_configured_origins(tmp_path, redis):
    stack = Stack(tmp_path, redis.url, CORS_ORIGINS="https://good.example")
    try:
        c = client(stack.start_app())
        good = c.get("/jobs", headers={"Origin": "https://good.example"})
        evil = c.get("/jobs", headers={"Origin": "https://evil.example"})
        assert good.headers.get("access-control-allow-origin") == "https://good.example"
        assert "access-control-allow-origin" not in evil.headers
        pre = c.options("/train", headers={"Origin": "https://evil.example",
                                           "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in pre.headers
        pre = c.options("/jobs/20260101-000000-abcdef", headers={"Origin": "https://good.example",
                                                                 "Access-Control-Request-Method": "DELETE"})
        assert pre.status_code == 200 and "DELETE" in pre.headers["access-control-allow-methods"]
    finally:
        stack.stop()


def test_without_cors_origins_no_origin_is_allowed(stack):
    r = client(stack.apps[0][1]).get("/jobs", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
