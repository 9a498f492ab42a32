"""Hostile things in RUNS_DIR and clients that race each other (issue "Hold under attack, round
2b"): real Redis, real Celery worker, real uvicorn. docs/RELIABILITY.md lists each guarantee."""
from __future__ import annotations

import concurrent.futures
import json
import os

import httpx
import pytest

from tests.service.stack import AUTH, Redis, Stack, client, submit, wait_for, wait_job

pytestmark = pytest.mark.slow

FIFO_JOB = "20260101-000000-0f1f0f"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A stack with a worker, an app and one tiny job trained (so /generate has a model)."""
    folder = tmp_path_factory.mktemp("hostile")
    redis = Redis(folder / "redis")
    stack = Stack(folder / "stack", redis.url)
    try:
        stack.start_worker()
        url = stack.start_app()
        with client(url) as c:
            wait_job(c, submit(c), {"succeeded"})
        yield stack, url
    finally:
        stack.stop()
        redis.stop()


def _seen_at(stack: Stack) -> float:
    return max((json.loads((stack.runs / "_workers" / name).read_text())["seen_at"]
                for name in stack.heartbeats()), default=0.0)


def test_a_fifo_job_record_is_damaged_and_stalls_no_route(served):
    """A job.json replaced by a FIFO once hung /jobs, / and /metrics for good; 45 of those filled
    the thread pool and /healthz, /readyz and /generate stopped answering too."""
    stack, url = served
    fifo = stack.runs / FIFO_JOB / "job.json"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    before = _seen_at(stack)

    def get(path: str) -> tuple[str, int, str]:
        with httpx.Client(base_url=url, timeout=30) as c:  # a hang shows as a ReadTimeout
            r = c.get(path)
            return path, r.status_code, r.text

    try:
        with concurrent.futures.ThreadPoolExecutor(48) as pool:
            slow = [pool.submit(get, path) for path in ["/jobs", "/", "/metrics"] * 15]
            probes = [pool.submit(get, path) for path in ["/healthz", "/readyz", "/generate?seed=1"]]
            probed = [f.result() for f in probes]
            listed = [f.result() for f in slow]
    finally:
        try:  # let any reader stuck in open() go (before the fix there were many)
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
    assert [(path, code) for path, code, _ in probed] == [("/healthz", 200), ("/readyz", 200),
                                                           ("/generate?seed=1", 200)]
    assert {code for _, code, _ in listed} == {200}
    jobs = {j["job_id"]: j for j in httpx.get(f"{url}/jobs", timeout=30).json()["jobs"]}
    assert jobs[FIFO_JOB]["state"] == "damaged" and "not a regular file" in jobs[FIFO_JOB]["error"]
    assert 'dcgan_jobs{state="damaged"} 1.0' in next(text for path, _, text in listed if path == "/metrics")
    assert FIFO_JOB in next(text for path, _, text in listed if path == "/")
    # The worker's watchdog lists every record too: a heartbeat after the FIFO starts a pass,
    # the next one proves that pass came back.
    wait_for(lambda: _seen_at(stack) > before, 30, "a heartbeat after the FIFO appeared")
    mark = _seen_at(stack)
    wait_for(lambda: _seen_at(stack) > mark, 30, "the heartbeat after a watchdog pass")


def test_resumes_racing_a_delete_get_404_or_409_and_never_bring_the_job_back(tmp_path):
    """60 concurrent resumes and one DELETE of the same cancelled job: 35 resumes once answered
    500 while the DELETE said 204 (and a late write could recreate the deleted folder)."""
    stack = Stack(tmp_path / "stack", None)  # embedded broker: no Redis, no worker needed here
    try:
        url = stack.start_app()
        c = client(url)
        for round_ in range(5):
            job_id = submit(c)
            assert c.post(f"/jobs/{job_id}/cancel", headers=AUTH).status_code == 202

            def call(i: int, job_id: str = job_id, at: int = round_ * 3) -> tuple[str, int, str]:
                with httpx.Client(base_url=url, timeout=60) as cc:
                    if i == at:  # the DELETE lands among the first resumes, a little later each round
                        r = cc.delete(f"/jobs/{job_id}", headers=AUTH)
                        return "delete", r.status_code, r.text
                    r = cc.post(f"/jobs/{job_id}/resume", headers=AUTH)
                    return "resume", r.status_code, r.text

            with concurrent.futures.ThreadPoolExecutor(61) as pool:
                answers = list(pool.map(call, range(61)))
            deleted = next(code for kind, code, _ in answers if kind == "delete")
            resumes = [(code, text) for kind, code, text in answers if kind == "resume"]
            assert deleted in (204, 409), answers
            assert {code for code, _ in resumes} <= {202, 404, 409}, [r for r in resumes if r[0] >= 500][:3]
            assert sum(code == 202 for code, _ in resumes) <= 1  # once queued, it cannot be resumed again
            if deleted == 204:
                assert not (stack.runs / job_id).exists(), os.listdir(stack.runs / job_id)
                assert c.get(f"/jobs/{job_id}").status_code == 404
            else:
                assert c.get(f"/jobs/{job_id}").json()["state"] == "queued"
    finally:
        stack.stop()


@pytest.mark.parametrize("planted", ["fifo", "not json", "huge"])
def test_a_bad_file_in_the_embedded_queue_does_not_stop_the_worker(tmp_path, planted):
    """A FIFO named like a message in RUNS_DIR/_broker/queue once blocked the worker's consumer
    for good while its heartbeat (and so its health check) went on."""
    stack = Stack(tmp_path / "stack", None)  # embedded broker
    try:
        stack.start_worker()
        c = client(stack.start_app())
        queue = stack.runs / "_broker" / "queue"
        bad = queue / "0000-planted.train.msg"  # sorts first: read before any real message
        if planted == "fifo":
            os.mkfifo(bad)
        elif planted == "not json":
            bad.write_bytes(b"\x00not a message")
        else:
            with open(bad, "wb") as f:
                f.truncate(1 << 30)  # 1 GiB, sparse
        job_id = submit(c, epochs=1, snapshot_epochs=[1])
        wait_job(c, job_id, {"succeeded"}, timeout=120)
        assert not bad.exists()
    finally:
        stack.stop()
