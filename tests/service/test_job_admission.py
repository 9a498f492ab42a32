"""Bursts of job requests against a real app (uvicorn) on a real Redis, no worker (jobs stay
queued): MAX_ACTIVE_JOBS holds however many requests arrive at once and whichever route makes a
job active, and a healthy broker is never reported as down because the app's send slots were
busy (issues "Hold under attack, round 2" and "round 2b"). docs/RELIABILITY.md rows 38 and 39."""
from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.service.stack import AUTH, TINY_JOB, Stack, client

pytestmark = pytest.mark.slow


def at_once(url: str, requests: list[tuple[str, dict | None]]) -> list[httpx.Response]:
    """Each (path, JSON body) POSTed from its own connection, all released together."""
    clients = [client(url) for _ in requests]
    start = threading.Barrier(len(requests))

    def post(i: int) -> httpx.Response:
        path, body = requests[i]
        start.wait()
        return clients[i].post(path, json=body, headers=AUTH)

    try:
        with ThreadPoolExecutor(len(requests)) as pool:
            return list(pool.map(post, range(len(requests))))
    finally:
        for c in clients:
            c.close()


def states(c: httpx.Client) -> Counter:
    return Counter(job["state"] for job in c.get("/jobs", headers=AUTH).json()["jobs"])


def test_thirty_posts_at_once_admit_exactly_max_active_jobs(tmp_path, redis):
    stack = Stack(tmp_path, redis.url, MAX_ACTIVE_JOBS="3")
    try:
        url = stack.start_app()
        answers = at_once(url, [("/train", TINY_JOB)] * 30)
        codes = Counter(r.status_code for r in answers)
        assert codes == {202: 3, 429: 27}, [(r.status_code, r.text) for r in answers if r.status_code != 429]
        assert all(r.headers["retry-after"] and "already queued or running" in r.text
                   for r in answers if r.status_code == 429)
        with client(url) as c:
            assert states(c) == {"queued": 3}
    finally:
        stack.stop()


def test_resume_counts_against_max_active_jobs_even_racing_new_jobs(tmp_path, redis):
    stack = Stack(tmp_path, redis.url, MAX_ACTIVE_JOBS="3")
    try:
        url = stack.start_app()
        with client(url) as c:
            stopped = []
            for _ in range(2):  # six cancelled jobs, made three at a time
                made = [c.post("/train", json=TINY_JOB, headers=AUTH) for _ in range(3)]
                assert [r.status_code for r in made] == [202] * 3, [r.text for r in made]
                for r in made:
                    job_id = r.json()["job_id"]
                    assert c.post(f"/jobs/{job_id}/cancel", headers=AUTH).json()["state"] == "cancelled"
                    stopped.append(job_id)
            assert c.post("/train", json=TINY_JOB, headers=AUTH).status_code == 202  # one active, two places left
            assert states(c) == {"cancelled": 6, "queued": 1}

            # with three active, a resume is refused like a new job
            assert c.post("/train", json=TINY_JOB, headers=AUTH).status_code == 202
            assert c.post("/train", json=TINY_JOB, headers=AUTH).status_code == 202
            r = c.post(f"/jobs/{stopped[0]}/resume", headers=AUTH)
            assert r.status_code == 429 and r.headers["retry-after"] and "already queued or running" in r.text
            assert c.get(f"/jobs/{stopped[0]}").json()["state"] == "cancelled"
            # and a job that may not resume at all still says why (409), whatever the count
            queued = next(j["job_id"] for j in c.get("/jobs").json()["jobs"] if j["state"] == "queued")
            assert c.post(f"/jobs/{queued}/resume", headers=AUTH).status_code == 409

            # two places again; six resumes and six new jobs race for them
            for job in c.get("/jobs").json()["jobs"]:
                if job["state"] == "queued" and job["job_id"] != queued:
                    assert c.post(f"/jobs/{job['job_id']}/cancel", headers=AUTH).status_code == 202
            assert states(c)["queued"] == 1
        answers = at_once(url, [(f"/jobs/{j}/resume", None) for j in stopped] + [("/train", TINY_JOB)] * 6)
        codes = Counter(r.status_code for r in answers)
        assert codes == {202: 2, 429: 10}, [(r.status_code, r.text) for r in answers if r.status_code != 429]
        with client(url) as c:
            assert states(c)["queued"] == 3
    finally:
        stack.stop()


def test_a_burst_of_posts_on_a_healthy_broker_is_never_told_the_queue_is_down(tmp_path, redis):
    """Twenty at once on a fresh app: its first send also loads the Celery app, so the others find
    every send slot busy. They wait for one (within BROKER_TIMEOUT) instead of answering 503."""
    stack = Stack(tmp_path, redis.url, MAX_ACTIVE_JOBS="100")
    try:
        url = stack.start_app()
        for _ in range(2):
            answers = at_once(url, [("/train", TINY_JOB)] * 20)
            assert [r.status_code for r in answers] == [202] * 20, \
                [(r.status_code, r.text) for r in answers if r.status_code != 202]
        with client(url) as c:
            assert states(c) == {"queued": 40}
    finally:
        stack.stop()
