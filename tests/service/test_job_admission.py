"""Bursts of job requests against a real app (uvicorn) on a real Redis, no worker (jobs stay
queued): a healthy broker is never reported as down because the app's send slots were
busy (issues "Hold under attack, round 2" and "round 2b"). docs/RELIABILITY.md rows 38 and 39."""
from __future__ import annotations

import threading
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
            assert [j["state"] for j in c.get("/jobs").json()["jobs"]] == ["queued"] * 40
    finally:
        stack.stop()
