"""The two ways to run it: embedded (no Redis at all) and scaled out (2 workers, 2 apps)."""
from __future__ import annotations

import pytest

from tests.service.stack import AUTH, Stack, client, submit, wait_for, wait_job

pytestmark = pytest.mark.slow


def test_embedded_mode_needs_no_redis(tmp_path):
    s = Stack(tmp_path, redis_url=None)
    try:
        s.start_worker()
        c = client(s.start_app())
        assert c.get("/healthz").json()["mode"] == "embedded"
        job_id = submit(c)
        job = wait_job(c, job_id, {"succeeded"}, timeout=180)
        assert job["epoch"] == 2
        assert c.get("/generate?seed=1&n=4").status_code == 200
        assert (tmp_path / "runs" / "_broker").is_dir()
    finally:
        s.stop()


def test_two_workers_and_two_apps_share_one_queue_and_one_runs_dir(tmp_path, redis):
    s = Stack(tmp_path, redis.url)
    try:
        s.start_worker("w1")
        s.start_worker("w2")
        a, b = client(s.start_app("app1")), client(s.start_app("app2"))
        jobs = [submit(a, epochs=6), submit(b, epochs=6)]
        # both run at once, each on its own worker process
        running = wait_for(lambda: (js := [a.get(f"/jobs/{j}", headers=AUTH).json() for j in jobs])
                           and all(j["state"] == "running" for j in js) and js, 120, "both jobs running")
        assert running[0]["worker"] and running[1]["worker"] and running[0]["worker"] != running[1]["worker"]
        owners = {(s.runs / j / ".owner.lock").read_text().strip() for j in jobs}
        assert len(owners) == 2
        for j in jobs:
            wait_job(a, j, {"succeeded"}, timeout=240)
        # both apps see the same jobs and serve the same bytes
        assert [j["job_id"] for j in a.get("/jobs").json()["jobs"]] == \
               [j["job_id"] for j in b.get("/jobs").json()["jobs"]]
        ra, rb = a.get("/generate?seed=9&n=16"), b.get("/generate?seed=9&n=16")
        assert ra.status_code == 200 and ra.content == rb.content and ra.headers["etag"] == rb.headers["etag"]
    finally:
        s.stop()
