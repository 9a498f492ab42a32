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


def test_a_burst_waits_for_a_free_send_slot_instead_of_being_refused():
    """Busy slots are not a sick broker: eight callers at once on one slot, each send slow but
    well within the deadline, are all sent (before, seven were told the queue was not answering)."""
    sent = []
    start = threading.Barrier(8)

    def slow(job_id):
        time.sleep(0.05)
        sent.append(job_id)

    sender = QueueSender(slow, timeout=30, concurrency=1)

    def call(job_id):
        start.wait()
        sender(job_id)

    threads = [threading.Thread(target=call, args=(str(i),)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(sent) == [str(i) for i in range(8)]


def test_a_caller_waiting_for_a_slot_gives_up_at_its_deadline():
    gate = threading.Event()
    sender = QueueSender(lambda job_id: gate.wait(10), timeout=0.5, concurrency=1)
    started = threading.Thread(target=lambda: pytest.raises(BrokerUnavailable, sender, "a"))
    started.start()
    time.sleep(0.1)  # "a" holds the only slot, not yet past its deadline
    with pytest.raises(BrokerUnavailable):
        sender("b")  # waits for the slot, then hears that the queue is not answering
    gate.set()
    started.join()


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


# -- numbers JSON does not have ------------------------------------------------------------------
NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"]


def _resolve(schema: dict, components: dict) -> dict:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _numeric(schema: dict, components: dict) -> bool:
    schema = _resolve(schema, components)
    return schema.get("type") in ("number", "integer") or any(
        _numeric(s, components) for s in schema.get("anyOf", []) + schema.get("oneOf", []))


def _number_places(schema: dict, components: dict) -> list[tuple[str | int, ...]]:
    """Where a body of `schema` holds a number: ("lr",), and ("snapshot_epochs", 0) for a list."""
    schema = _resolve(schema, components)
    places = [p for s in schema.get("anyOf", []) for p in _number_places(s, components)]  # e.g. body | null
    for name, prop in schema.get("properties", {}).items():
        prop = _resolve(prop, components)
        if _numeric(prop, components):
            places.append((name,))
        elif prop.get("type") == "array" and _numeric(prop.get("items", {}), components):
            places.append((name, 0))
    return places


def test_every_number_field_of_every_request_body_refuses_nan_and_infinity_by_name(client):
    job_id = client.post("/train", json={"dataset": "synthetic"}, headers=AUTH).json()["job_id"]
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    tried: dict[tuple[str, str], int] = {}
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body is None:
                continue
            url = path.replace("{job_id}", job_id)
            for place in _number_places(body["schema"], components):
                for literal in NON_FINITE:
                    raw = f'{{"{place[0]}": {literal}}}' if len(place) == 1 else f'{{"{place[0]}": [{literal}]}}'
                    r = client.request(method, url, content=raw,
                                       headers={**AUTH, "Content-Type": "application/json"})
                    assert r.status_code == 422, (method, path, raw, r.text)
                    assert r.json()["detail"] == [{
                        "type": "finite_number", "loc": ["body", *place], "input": literal,
                        "msg": f"Input should be a finite number ({literal} is not one in JSON)"}], r.text
                    tried[(method, path)] = tried.get((method, path), 0) + 1
    assert {("post", "/train"), ("post", "/models/default"), ("post", "/jobs/{job_id}/resume")} <= set(tried)
    assert tried[("post", "/train")] >= 20 * len(NON_FINITE)  # every TrainConfig float and int
    assert len(client.get("/jobs").json()["jobs"]) == 1  # none of them made a job


def test_non_finite_numbers_are_found_wherever_they_are_nested():
    from app.middleware import non_finite_numbers

    body = b'{"a": 1.5, "b": [0, {"c": NaN}], "d": {"e": -Infinity, "f": 1e999}, "g": 1e308}'
    assert non_finite_numbers(body) == [(("b", 1, "c"), "NaN"), (("d", "e"), "-Infinity"), (("d", "f"), "1e999")]
    assert non_finite_numbers(b'[1, 2.5e10, "NaN"]') == []  # a string "NaN" is just a string
    assert non_finite_numbers(b"{nope") is None and non_finite_numbers(b"[" * 100_000) is None
