"""Rendering /generate and /interpolate images: off the event loop, bounded, cached, deduplicated.

- The ETag is a hash of the checkpoint's identity and the query, known before any work, so a
  revalidation (If-None-Match) costs no generator pass at all.
- Finished images are kept in a byte-bounded LRU; identical requests in flight share one
  computation; at most `concurrency` renders run at once and at most `queue` wait, beyond which
  the caller gets Busy (503 + Retry-After) instead of a pile-up that eats memory.
- Streamed answers (GET /faces.zip: many chunks, minutes on a wide model) render on a lane of
  their own, one chunk at a time at the lowest CPU priority, with at most `streams` of them
  admitted: however many zips are asked for, they never take a thread of, nor queue in front
  of, the short renders above.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial

from app.registry import Busy, Loaded
from model.imageio import encode_gif, encode_image, frames_rgb, grid_rgb
from model.sampling import best_of, generate, interpolate


@dataclass(frozen=True)
class GridQuery:
    seed: int
    n: int
    nrow: int
    best_of: int | None
    truncation: float | None
    format: str


@dataclass(frozen=True)
class StripQuery:
    seed_a: int
    seed_b: int
    steps: int
    truncation: float | None
    format: str


def etag(model: Loaded, query: GridQuery | StripQuery) -> str:
    text = f"{model.identity}|{type(query).__name__}|{sorted(asdict(query).items())}"
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def render_grid(model: Loaded, q: GridQuery) -> bytes:
    if q.best_of:
        images = best_of(model.g, model.d, q.seed, q.n, q.best_of, q.truncation)
    else:
        images = generate(model.g, q.seed, q.n, q.truncation)
    return encode_image(grid_rgb(images, nrow=q.nrow), q.format)


def render_strip(model: Loaded, q: StripQuery) -> bytes:
    images = interpolate(model.g, q.seed_a, q.seed_b, q.steps, q.truncation)
    if q.format == "gif":
        return encode_gif(frames_rgb(images))
    return encode_image(grid_rgb(images, nrow=q.steps), q.format)


class ByteLRU:
    """A thread-safe LRU of bytes whose total size stays under `capacity`."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: str, value: bytes) -> None:
        if len(value) > self.capacity:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self.size += len(value)
            while self.size > self.capacity:
                _, old = self._items.popitem(last=False)
                self.size -= len(old)


def _thread_priority(nice: int) -> None:
    """Run this thread at `nice` (Linux sets nice per thread, and the OpenMP threads torch starts
    from this one inherit it). Renders run at 10: on a saturated machine the event loop still
    answers cache hits, health checks and job status promptly. Stream chunks run at 19: when
    they compete with a render for the cores, the render gets nearly all of them."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (AttributeError, OSError):
        pass


class Renderer:
    def __init__(self, cache_bytes: int, concurrency: int, queue: int, streams: int) -> None:
        self.cache = ByteLRU(cache_bytes)
        self.concurrency = concurrency
        self.queue = queue
        self.streams = streams
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="render",
                                        initializer=partial(_thread_priority, 10))
        # One thread: the admitted streams take turns, a chunk each (each asks for its next
        # chunk only once the last one is sent), so they share it fairly.
        self._stream_pool = ThreadPoolExecutor(1, thread_name_prefix="render-stream",
                                               initializer=partial(_thread_priority, 19))
        self._streaming = 0
        self._waiting = 0
        self._inflight: dict[str, asyncio.Future] = {}

    def open_stream(self) -> Callable[[], None]:
        """Admit one more streamed answer, or raise Busy when `streams` are streaming already.
        Returns its release, to be called when the answer ends, however it ends (once or more).
        Called on the event loop, so checking and counting cannot interleave with another's."""
        if self._streaming >= self.streams:
            raise Busy()
        self._streaming += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._streaming -= 1
        return release

    async def stream_chunk(self, work: Callable[[], bytes]) -> bytes:
        """`work()`, one chunk of an admitted stream, on the streams' lane; uncached."""
        return await asyncio.get_running_loop().run_in_executor(self._stream_pool, work)

    async def get(self, key: str, work: Callable[[], bytes]) -> tuple[bytes, bool]:
        """(body, came_from_cache) for `key`, computing `work()` in a thread when needed."""
        body = self.cache.get(key)
        if body is not None:
            return body, True
        if key in self._inflight:  # the same image is being rendered for someone else
            return await asyncio.shield(self._inflight[key]), False
        if self._waiting >= self.concurrency + self.queue:
            raise Busy()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._inflight[key] = future
        self._waiting += 1
        try:
            # The pool's `concurrency` threads bound the work running at once, even for renders
            # whose client went away (a thread cannot be cancelled; it finishes, then is reused).
            body = await loop.run_in_executor(self._pool, work)
            self.cache.put(key, body)
            future.set_result(body)
            return body, False
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: followers re-raise it, nobody logs it twice
            raise
        finally:
            self._waiting -= 1
            del self._inflight[key]
