"""Jobs and workers under faults: killed processes, redelivery, SIGTERM, Redis restarts.

Each test runs real processes (own redis-server, Celery workers, uvicorn) with tiny nets; the
guarantees are listed in docs/RELIABILITY.md.
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import time

import pytest
import torch

from tests.helpers import assert_same_weights
from tests.service.stack import AUTH, TINY_JOB, Redis, Stack, client, submit, wait_for, wait_job

pytestmark = pytest.mark.slow

# Slow enough to kill mid-job (16 batches an epoch), fast enough to finish in seconds.
LONGER = {**TINY_JOB, "synthetic_images": 256, "epochs": 6, "snapshot_epochs": [6]}


def owner_pid(stack: Stack, job_id: str) -> int | None:
    try:
        text = (stack.runs / job_id / ".owner.lock").read_text().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def steps_logged(stack: Stack, job_id: str) -> list[int]:
    rows = [json.loads(x) for x in (stack.runs / job_id / "metrics.jsonl").read_text().splitlines()]
    return [r["step"] for r in rows if r["kind"] == "interval"]


def final_generator(stack: Stack, job_id: str, epoch: int) -> dict:
    path = stack.runs / job_id / "checkpoints" / f"epoch-{epoch:04d}.pt"
    return torch.load(path, weights_only=True)["generator"]


@pytest.fixture
def fresh(tmp_path):
    """A stack of our own per test (these tests kill things)."""
    redis = Redis(tmp_path / "redis", persistent=True)
    stack = Stack(tmp_path / "stack", redis.url, VISIBILITY_TIMEOUT="3600", MAX_ATTEMPTS="3")
    stack.redis = redis
    yield stack
    stack.stop()
    redis.stop()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """LONGER trained without interruption, for bit-exact comparisons."""
    redis = Redis(tmp_path_factory.mktemp("ref-redis"))
    stack = Stack(tmp_path_factory.mktemp("ref"), redis.url)
    try:
        stack.start_worker()
        c = client(stack.start_app())
        job_id = submit(c, **LONGER)
        wait_job(c, job_id, {"succeeded"}, timeout=240)
        yield final_generator(stack, job_id, LONGER["epochs"])
    finally:
        stack.stop()
        redis.stop()


def test_redelivery_after_the_visibility_timeout_does_not_start_a_second_copy(tmp_path):
    redis = Redis(tmp_path / "redis")
    stack = Stack(tmp_path / "stack", redis.url, VISIBILITY_TIMEOUT="2")
    try:
        stack.start_worker("w1")
        stack.start_worker("w2")
        c = client(stack.start_app())
        # Long enough that the redelivered copy (swept back every 2 s, then a fresh pool process
        # that imports torch) always arrives while the job still runs, however fast the machine.
        job_id = submit(c, **{**LONGER, "epochs": 200})
        logs = lambda: stack.log("worker-w1") + stack.log("worker-w2")  # noqa: E731
        wait_for(lambda: "another worker owns it" in logs(), 90, "the redelivered copy")
        assert c.get(f"/jobs/{job_id}").json()["state"] == "running"
        assert c.post(f"/jobs/{job_id}/cancel", headers=AUTH).status_code == 202
        job = wait_job(c, job_id, {"cancelled"}, timeout=60)
        assert job["attempts"] == 1
        steps = steps_logged(stack, job_id)
        assert steps == sorted(set(steps)), "two trainers would log the same steps twice"
    finally:
        stack.stop()
        redis.stop()


@pytest.mark.parametrize("victim", ["pool child", "main process"])
def test_a_killed_worker_resumes_from_its_checkpoint_with_identical_results(fresh, reference, victim):
    main = fresh.start_worker("w1")
    c = client(fresh.start_app())
    job_id = submit(c, **LONGER)
    wait_for(lambda: c.get(f"/jobs/{job_id}").json()["epoch"] >= 2, 120, "epoch 2")
    child = owner_pid(fresh, job_id)
    os.kill(child if victim == "pool child" else main.pid, signal.SIGKILL)
    if victim == "main process":
        # the orphaned child notices within a batch, checkpoints and hands the job back
        wait_for(lambda: not alive(child), 30, "the orphaned child to stop")
        assert c.get(f"/jobs/{job_id}").json()["state"] == "queued"
        fresh.start_worker("w2")  # "once a worker is running again"
    job = wait_job(c, job_id, {"succeeded"}, timeout=240)
    assert job["epoch"] == LONGER["epochs"] and job["attempts"] == 2 and job["error"] is None
    # a killed pool process is a crash; a killed main process lets its pool process hand off
    assert job["crashes"] == (1 if victim == "pool child" else 0)
    assert_same_weights(final_generator(fresh, job_id, LONGER["epochs"]), reference)


def test_a_job_whose_worker_keeps_dying_is_failed_after_bounded_attempts(fresh):
    fresh.start_worker("w1")
    c = client(fresh.start_app())
    job_id = submit(c, **{**LONGER, "epochs": 200})
    killed = set()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        job = c.get(f"/jobs/{job_id}", headers=AUTH).json()  # the operator's view names the worker
        if job["state"] == "failed":
            break
        pid = owner_pid(fresh, job_id)
        # kill only a process the record itself names as the trainer (not one still starting)
        training = job["state"] == "running" and pid and (job["worker"] or "").endswith(f":{pid}")
        if training and pid not in killed and alive(pid):
            os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        time.sleep(0.05)
    assert job["state"] == "failed", job
    assert len(killed) == 3 and "died 3 times" in job["error"]
    time.sleep(3)  # and nothing picks it up again
    assert c.get(f"/jobs/{job_id}").json()["state"] == "failed"


def test_sigterm_checkpoints_and_hands_the_job_to_the_next_worker(fresh):
    w1 = fresh.start_worker("w1")
    c = client(fresh.start_app())
    job_id = submit(c, **{**LONGER, "epochs": 12})
    wait_for(lambda: c.get(f"/jobs/{job_id}").json()["epoch"] >= 1, 120, "epoch 1")
    t0 = time.monotonic()
    w1.send_signal(signal.SIGTERM)
    w1.wait(60)
    assert time.monotonic() - t0 < 30, "the worker should hand off within a batch, not finish the job"
    handed = c.get(f"/jobs/{job_id}").json()
    assert handed["state"] == "queued" and handed["step"] > 0
    fresh.start_worker("w2")
    job = wait_job(c, job_id, {"succeeded"}, timeout=240)
    assert job["attempts"] == 2 and job["crashes"] == 0
    steps = steps_logged(fresh, job_id)
    assert steps == sorted(set(steps))  # continued, not restarted


def test_a_cancelled_job_stays_cancelled_across_a_worker_restart(fresh):
    w1 = fresh.start_worker("w1")
    c = client(fresh.start_app())
    job_id = submit(c, **{**LONGER, "epochs": 200})
    wait_for(lambda: c.get(f"/jobs/{job_id}").json()["step"] >= 3, 120, "training")
    assert c.post(f"/jobs/{job_id}/cancel", headers=AUTH).status_code == 202
    job = wait_job(c, job_id, {"cancelled"}, timeout=20)
    assert list((fresh.runs / job_id / "checkpoints").glob("epoch-*.pt"))
    os.kill(w1.pid, signal.SIGKILL)
    fresh.start_worker("w2")
    time.sleep(3)
    assert c.get(f"/jobs/{job_id}").json()["state"] == "cancelled"
    assert c.get(f"/jobs/{job_id}").json()["step"] == job["step"]


def test_redis_down_and_back_loses_no_job_and_never_gives_it_two_owners(fresh):
    fresh.start_worker("w1")
    c = client(fresh.start_app())
    first = submit(c, epochs=1)
    wait_job(c, first, {"succeeded"})
    job_id = submit(c, **{**LONGER, "epochs": 10})
    wait_for(lambda: c.get(f"/jobs/{job_id}").json()["step"] >= 3, 120, "training")
    fresh.redis.stop()
    # the app keeps serving images and says 503 + Retry-After to new jobs, leaving no record
    assert c.get("/generate?seed=1&n=4").status_code == 200
    r = c.post("/train", json=TINY_JOB, headers=AUTH)
    assert r.status_code == 503 and r.headers["retry-after"]
    assert len(c.get("/jobs").json()["jobs"]) == 2
    step_then = c.get(f"/jobs/{job_id}").json()["step"]
    wait_for(lambda: c.get(f"/jobs/{job_id}").json()["step"] > step_then, 60, "training to go on without Redis")
    fresh.redis.start()
    job = wait_job(c, job_id, {"succeeded"}, timeout=240)
    assert job["attempts"] == 1
    steps = steps_logged(fresh, job_id)
    assert steps == sorted(set(steps))
    assert submit(c, epochs=1)  # the queue works again


def test_twenty_concurrent_posts_with_one_idempotency_key_make_one_job(fresh):
    fresh.start_worker("w1")
    url = fresh.start_app()

    def post(_):
        with client(url) as c:
            r = c.post("/train", json=TINY_JOB, headers={**AUTH, "Idempotency-Key": "same-key"})
            return r.status_code, r.json()["job_id"]

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(post, range(20)))
    assert {code for code, _ in answers} == {202}
    assert len({job for _, job in answers}) == 1
    jobs = client(url).get("/jobs").json()["jobs"]
    assert len(jobs) == 1
    # a different key is a different job
    other = client(url).post("/train", json=TINY_JOB, headers={**AUTH, "Idempotency-Key": "other"})
    assert other.json()["job_id"] != answers[0][1]
