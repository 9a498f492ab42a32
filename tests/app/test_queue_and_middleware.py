"""The bounded queue sender, the body limit and the 405 answer."""
from __future__ import annotations

import threading
import time

import pytest

from app.queue import QueueSender
from tests.app.conftest import AUTH
from worker.errors import BrokerUnavailable


def test_a_send_that_hangs_is_given_up_after_the_deadline_and_others_fail_fast():
    gate = threading.Event()
    sender = QueueSender(lambda job_id: gate.wait(10), timeout=0.2, concurrency=1)
    t0 = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="did not answer within 0.2 s"):
        sender("a")
    assert 0.15 < time.monotonic() - t0 < 1
    t0 = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="still waiting"):
        sender("b")  # the first send still holds the only slot
    assert time.monotonic() - t0 < 0.1
    gate.set()
    time.sleep(0.1)
    sent = []
    QueueSender(sent.append, timeout=1)("c")
    assert sent == ["c"]


def test_errors_of_the_send_reach_the_caller():
    def refuse(job_id):
        raise BrokerUnavailable("down")

    with pytest.raises(BrokerUnavailable, match="down"):
        QueueSender(refuse, timeout=1)("a")


def test_a_body_over_the_limit_is_413_whether_announced_or_chunked(client):
    r = client.post("/train", content=b"x" * 1_100_000, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413 and "request body over" in r.json()["detail"]

    def chunks():
        for _ in range(40):
            yield b"x" * 50_000

    r = client.post("/train", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413


def test_a_body_that_trickles_in_too_slowly_is_408(tmp_path, queue):
    import asyncio

    from app.main import create_app
    from tests.app.conftest import make_settings

    app = create_app(make_settings(tmp_path, body_timeout=0.3), enqueue=queue)
    sent = []

    async def run():
        async def receive():
            await asyncio.sleep(0.2)
            return {"type": "http.request", "body": b"{", "more_body": True}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/train", "raw_path": b"/train", "query_string": b"",
                 "headers": [(b"authorization", AUTH["Authorization"].encode()),
                             (b"content-type", b"application/json")],
                 "http_version": "1.1", "scheme": "http", "server": ("t", 80), "client": ("c", 1),
                 "root_path": "", "app": app}
        await asyncio.wait_for(app(scope, receive, send), 5)

    asyncio.run(run())
    assert sent[0]["status"] == 408 and b"not received within 0.3 s" in sent[1]["body"]


def test_405_lists_every_method_of_the_path(client):
    r = client.put("/models/default")
    assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET, POST"


def test_an_undecodable_body_is_422(client):
    r = client.post("/train", content=b"\xff\xfe{", headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 422


def test_the_openapi_schema_lists_the_job_states_once_from_the_record(client):
    states = client.get("/openapi.json").json()["components"]["schemas"]["JobState"]["enum"]
    assert states == ["queued", "running", "succeeded", "failed", "cancelled", "damaged"]
