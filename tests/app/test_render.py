"""Rendering off the event loop: cache, shared in-flight work, bounded waiting."""
from __future__ import annotations

import asyncio
import threading

import pytest

from app.registry import Busy
from app.render import ByteLRU, Renderer


def test_the_byte_cache_stays_under_its_capacity_and_drops_the_oldest():
    lru = ByteLRU(10)
    lru.put("a", b"1234")
    lru.put("b", b"5678")
    lru.get("a")  # now the newest
    lru.put("c", b"90ab")
    assert lru.get("b") is None and lru.get("a") == b"1234" and lru.size <= 10
    lru.put("huge", b"x" * 11)
    assert lru.get("huge") is None


def test_identical_requests_share_one_render_and_then_hit_the_cache():
    calls = []

    def work():
        calls.append(1)
        return b"png"

    async def main():
        r = Renderer(1 << 20, concurrency=2, queue=4, streams=1)
        first = await asyncio.gather(*[r.get("k", work) for _ in range(5)])
        again = await r.get("k", work)
        return first, again

    first, again = asyncio.run(main())
    assert len(calls) == 1 and {body for body, _ in first} == {b"png"} and again == (b"png", True)


def test_work_beyond_concurrency_plus_queue_is_refused():
    release = threading.Event()

    def slow():
        release.wait(10)
        return b"x"

    async def main():
        r = Renderer(1 << 20, concurrency=1, queue=1, streams=1)
        tasks = [asyncio.create_task(r.get(f"k{i}", slow)) for i in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(Busy):
            await r.get("k2", slow)
        release.set()
        return await asyncio.gather(*tasks)

    assert [hit for _, hit in asyncio.run(main())] == [False, False]


def test_stream_chunks_never_hold_or_queue_in_front_of_the_short_renders():
    chunk_may_end = threading.Event()
    order = []

    def long_chunk():
        chunk_may_end.wait(10)
        order.append("chunk")
        return b"zip"

    async def main():
        r = Renderer(1 << 20, concurrency=1, queue=0, streams=3)
        releases = [r.open_stream() for _ in range(3)]
        chunks = [asyncio.create_task(r.stream_chunk(long_chunk)) for _ in range(3)]
        await asyncio.sleep(0.05)  # the stream lane is busy, two more chunks wait for it
        body, _ = await asyncio.wait_for(r.get("face", lambda: order.append("face") or b"png"), 5)
        chunk_may_end.set()
        await asyncio.gather(*chunks)
        for release in releases:
            release()
        return body

    assert asyncio.run(main()) == b"png" and order == ["face", "chunk", "chunk", "chunk"]


def test_streams_beyond_the_bound_are_refused_until_one_ends():
    r = Renderer(1 << 20, concurrency=1, queue=0, streams=2)
    first, _ = r.open_stream(), r.open_stream()
    with pytest.raises(Busy):
        r.open_stream()
    first()
    first()  # releasing twice frees one place, not two
    r.open_stream()
    with pytest.raises(Busy):
        r.open_stream()
