"""Rendering off the event loop: cache, shared in-flight work, bounded waiting."""
from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
import torch

from app.registry import Busy
from app.render import ByteLRU, GridQuery, Renderer, StripQuery, render_grid, render_strip


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


# -- request batching: real generators, real renders ------------------------------------------

def _loaded(identity: str, seed: int = 0):
    from app.registry import Loaded
    from model.checkpoint import CheckpointRef
    from model.config import TrainConfig
    from model.networks import networks_for

    torch.manual_seed(seed)
    g, d = networks_for(TrainConfig(ngf=16, ndf=16))
    g.to(memory_format=torch.channels_last).eval().requires_grad_(False)
    ref = CheckpointRef(1, 0, Path("epoch-0001.pt"))  # named in the PNGs' provenance
    return Loaded("job", ref, identity, g, d.eval().requires_grad_(False))


GRIDS = [GridQuery(seed, n, 8, None, None, "png") for seed, n in [(1, 1), (2, 5), (1, 3), (7, 17), (3, 1), (9, 2)]]
STRIPS = [StripQuery(1, 2, 6, None, "png"), StripQuery(4, 5, 3, 0.7, "gif")]


def _works(model):
    return [render_grid(model, q) for q in GRIDS] + [render_strip(model, q) for q in STRIPS]


@pytest.mark.parametrize("rows", [64, 7, 1])
def test_batched_renders_are_byte_for_byte_what_each_gives_alone(rows):
    """Concurrent renders of two models, batched in different compositions (all in one pass, a
    few per pass, one per pass), give exactly the bytes each gives rendered alone and unbatched."""
    models = [_loaded("a", 0), _loaded("b", 1)]
    alone = [w() for m in models for w in _works(m)]

    async def main():
        r = Renderer(1 << 20, concurrency=2, queue=64, streams=1, batch_window_ms=60_000, batch_rows=rows)
        works = [w for m in models for w in _works(m)]
        bodies = await asyncio.gather(*[r.get(f"k{i}", w) for i, w in enumerate(works)])
        return [b for b, _ in bodies], r.batcher.passes

    batched, passes = asyncio.run(main())
    assert batched == alone
    if rows == 64:
        assert passes == 2  # one forward pass per model
    else:
        assert passes > 2


def test_with_the_window_at_zero_every_render_runs_its_own_pass():
    model = _loaded("a")

    async def main():
        r = Renderer(1 << 20, concurrency=2, queue=64, streams=1, batch_window_ms=0)
        await asyncio.gather(*[r.get(f"k{i}", w) for i, w in enumerate(_works(model))])
        return r.batcher.passes

    assert asyncio.run(main()) == len(GRIDS) + len(STRIPS)


def _blocking(model, release: threading.Event):
    """`model` whose forward pass waits for `release`."""
    forward = model.g.forward
    model.g.forward = lambda z: release.wait(10) and forward(z)
    return model


def test_while_every_slot_runs_a_pass_renders_gather_and_one_that_went_away_is_taken_out():
    from concurrent.futures import ThreadPoolExecutor

    from app.render import ForwardBatcher
    from model.sampling import run_generator, sample_noise

    model, release = _loaded("a"), threading.Event()
    blocker = _blocking(_loaded("b"), release)
    noise = {name: sample_noise(seed, range(rows), model.g.nz) for name, seed, rows in
             [("kept", 1, 2), ("gone", 2, 9), ("late", 3, 4)]}

    async def main():
        batcher = ForwardBatcher(ThreadPoolExecutor(4), window=5.0, max_rows=64, slots=1)
        held = asyncio.create_task(batcher.forward(blocker, noise["kept"]))  # the only slot
        await asyncio.sleep(0.05)
        tasks = {name: asyncio.create_task(batcher.forward(model, noise[name])) for name in ("kept", "gone")}
        await asyncio.sleep(0.05)
        tasks["late"] = asyncio.create_task(batcher.forward(model, noise["late"]))  # joins the waiting batch
        await asyncio.sleep(0.05)
        tasks["gone"].cancel()
        release.set()
        await held
        results = {name: await tasks[name] for name in ("kept", "late")}
        with pytest.raises(asyncio.CancelledError):
            await tasks["gone"]
        return results, batcher

    results, batcher = asyncio.run(main())
    for name, (images, seconds, rows) in results.items():
        assert rows == 6 and seconds > 0  # kept and late shared one pass; gone's 9 rows were left out
        assert torch.equal(images, run_generator(model.g, noise[name]))
    assert batcher.passes == 2 and batcher._running == 0 and not batcher._gathering and not batcher._due


def test_a_lone_render_waits_for_nobody():
    from app.render import Timing
    model = _loaded("a")

    async def main():
        r = Renderer(1 << 20, concurrency=2, queue=8, streams=1, batch_window_ms=60_000)
        timing = Timing()
        await asyncio.wait_for(r.get("k", render_grid(model, GridQuery(1, 2, 8, None, None, "png")), timing), 30)
        return timing

    assert asyncio.run(main()).faces == 2  # a minute's window, and it did not wait for it


def test_an_error_in_a_shared_pass_reaches_every_render_of_the_batch_and_frees_the_slot():
    model = _loaded("a")
    broken = _loaded("a")
    broken.g.forward = lambda z: (_ for _ in ()).throw(RuntimeError("boom"))

    async def main():
        r = Renderer(1 << 20, concurrency=1, queue=8, streams=1, batch_window_ms=50)
        works = [render_grid(broken, GridQuery(s, 2, 8, None, None, "png")) for s in range(3)]
        results = await asyncio.gather(*[r.get(f"k{i}", w) for i, w in enumerate(works)],
                                       return_exceptions=True)
        after, _ = await r.get("ok", render_grid(model, GridQuery(1, 1, 8, None, None, "png")))
        return results, after

    results, after = asyncio.run(main())
    assert all(isinstance(e, RuntimeError) and str(e) == "boom" for e in results)
    assert after == render_grid(model, GridQuery(1, 1, 8, None, None, "png"))()


@pytest.mark.parametrize("window_ms", [0, 30])
def test_a_render_says_where_its_time_went(window_ms):
    from app.render import Timing
    model = _loaded("a")

    async def main():
        r = Renderer(1 << 20, concurrency=2, queue=8, streams=1, batch_window_ms=window_ms)
        timings = [Timing() for _ in range(3)]
        works = [render_grid(model, GridQuery(s, 2, 8, None, None, "png")) for s in range(3)]
        await asyncio.gather(*[r.get(f"k{i}", w, t) for i, (w, t) in enumerate(zip(works, timings, strict=True))])
        ranked = Timing()
        await r.get("best", render_grid(model, GridQuery(1, 2, 8, 4, None, "png")), ranked)
        cached = Timing()
        await r.get("k0", works[0], cached)
        return timings, ranked, cached

    timings, ranked, cached = asyncio.run(main())
    for t in timings:
        assert t.g > 0 and t.encode > 0 and t.wait >= 0 and t.render == 0
        assert t.faces == (6 if window_ms else 2)  # the three renders shared one pass, or each its own
        assert 'g;dur=' in t.header() and f'desc="{t.faces} faces in the pass"' in t.header()
    assert ranked.render > 0 and ranked.faces == 0 and ranked.header().startswith("wait;dur=")
    assert "render;dur=" in ranked.header() and "g;dur" not in ranked.header()
    assert cached == Timing()  # a cache hit rendered nothing
