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
- Request batching: a /generate or /interpolate render is staged (noise, G's forward pass,
  encoding); the forward passes of concurrent renders of the same model run as one batch of at
  most `batch_rows` rows, gathered for at most `batch_window_ms` (ForwardBatcher).
  Face i of seed s is computed from its own noise row, and each row of a batch is computed
  independently of its batch-mates, so every answer is byte for byte what it would be alone
  (tests/app/test_render.py checks it across batch compositions). /faces.zip stays on its lane.
"""
from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial

import torch

from app.lanes import Places, thread_priority
from app.registry import Busy, Loaded
from model.directions import Directions, edit_noise, edits_text
from model.imageio import encode_gif, encode_image, frames_rgb, grid_rgb
from model.provenance import grid_faces, provenance
from model.sampling import best_of, interpolation_noise, run_generator, sample_noise, variation_noise

# (direction, amount) pairs, sorted, none of amount 0 (model/directions.check_edits): moves every
# face of a render along the model's latent directions, in its noise stage.
Edits = tuple[tuple[int, float], ...]


@dataclass(frozen=True)
class GridQuery:
    seed: int
    n: int
    nrow: int
    best_of: int | None
    truncation: float | None
    format: str
    edit: Edits = ()
    latent: str | None = None  # a stored latent's ID: the grid is its face alone (n 1, no seed)


@dataclass(frozen=True)
class StripQuery:
    seed_a: int
    seed_b: int
    steps: int
    truncation: float | None
    format: str
    edit: Edits = ()
    latent: str | None = None  # a stored latent's ID: the walk starts at its face, not seed_a's


@dataclass(frozen=True)
class VariationsQuery:
    seed: int
    n: int
    nrow: int
    spread: float
    truncation: float | None
    format: str
    edit: Edits = ()


def etag(model: Loaded, query: GridQuery | StripQuery | VariationsQuery) -> str:
    text = f"{model.identity}|{model.backend}|{type(query).__name__}|{sorted(asdict(query).items())}"
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


@dataclass
class Timing:
    """Where one render's time went, in seconds; a cache miss answers it as `Server-Timing`
    (browsers' developer tools show it; benchmarks/generate_bench.py reads it)."""
    wait: float = 0.0  # for a render thread, for its batch to gather, for a free forward slot
    noise: float = 0.0
    g: float = 0.0  # G's forward pass (shared with the other renders of its batch)
    faces: int = 0  # rows in that forward pass
    encode: float = 0.0  # the image file (PNG, JPEG, WebP or GIF)
    render: float = 0.0  # an unstaged render (best_of: D's ranking and G together)

    def header(self) -> str:
        parts = [f"wait;dur={self.wait * 1000:.1f}"]
        if self.render:
            parts.append(f"render;dur={self.render * 1000:.1f}")
        else:
            parts += [f"noise;dur={self.noise * 1000:.1f}",
                      f'g;dur={self.g * 1000:.1f};desc="{self.faces} faces in the pass"',
                      f"encode;dur={self.encode * 1000:.1f}"]
        return ", ".join(parts)


def _timed(fn: Callable, *args) -> tuple[object, float]:
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


@dataclass(frozen=True)
class Staged:
    """A render in three steps: `noise()` and `finish(images)` run in a render thread, G's
    forward pass between them may be shared with other renders of the same model."""
    model: Loaded
    noise: Callable[[], torch.Tensor]
    finish: Callable[[torch.Tensor], bytes]

    def __call__(self) -> bytes:  # all three in one go, unbatched
        return self.timed(Timing(), time.perf_counter())

    def timed(self, timing: Timing, admitted: float) -> bytes:
        """`self()`, saying where the time went (from `admitted`, a perf_counter time)."""
        timing.wait = time.perf_counter() - admitted
        noise, timing.noise = _timed(self.noise)
        images, timing.g = _timed(run_generator, self.model.g, noise)
        timing.faces = len(noise)
        body, timing.encode = _timed(self.finish, images)
        return body


def model_text(model: Loaded, kind: str, edit: Edits = (), **options) -> dict[str, str]:
    """The provenance text chunks of an image `model` drew (model/provenance.py); `edit` is
    named only when there is one, so a plain image's chunks are the same as ever."""
    if edit:
        options["edit"] = edits_text(edit)
    return provenance(model.job_id, model.ref.epoch, model.ref.name, model.checksum, kind, **options)


def grid_text(model: Loaded, q: GridQuery) -> dict[str, str]:
    """A grid's provenance. nrow is the one the grid has (at most n), so a one-face grid says
    the same whatever nrow asked for: /faces.zip members equal /generate?seed=S&n=1. A latent's
    face names the latent instead of a seed and faces."""
    if q.latent is not None:
        return model_text(model, "grid", q.edit, latent=q.latent, n=1, nrow=1)
    return model_text(model, "grid", q.edit, seed=q.seed, faces=grid_faces(q.n, q.best_of), n=q.n,
                      nrow=min(q.nrow, q.n), truncation=q.truncation, best_of=q.best_of)


# The render_* functions take the model's directions when the query has edits
# (app/directions.edits_for); the edits move the noise, so G's pass and the encoding are unchanged.
# A stored latent (app/latents.py) comes as its noise, (1, nz, 1, 1), and is edited like any face.

def render_grid(model: Loaded, q: GridQuery, directions: Directions | None = None,
                latent: torch.Tensor | None = None) -> Staged | Callable[[], bytes]:
    def finish(images: torch.Tensor) -> bytes:
        text = grid_text(model, q) if q.format == "png" else None
        return encode_image(grid_rgb(images, nrow=q.nrow), q.format, text)

    def edited(noise: torch.Tensor) -> torch.Tensor:
        return edit_noise(noise, directions, q.edit)
    if latent is not None:
        return Staged(model, lambda: edited(latent.clone()), finish)
    if q.best_of:  # D's ranking (of the plain faces) needs its own passes: not batched
        return lambda: finish(best_of(model.g, model.d, q.seed, q.n, q.best_of, q.truncation, edited))
    return Staged(model, lambda: edited(sample_noise(q.seed, range(q.n), model.g.nz, q.truncation)), finish)


def render_variations(model: Loaded, q: VariationsQuery, directions: Directions | None = None) -> Staged:
    """Face 0 of the seed, then n-1 faces near it (model/sampling.variation_noise): staged, so
    it batches with /generate's renders."""
    def finish(images: torch.Tensor) -> bytes:
        text = model_text(model, "variations", q.edit, seed=q.seed, faces="0", n=q.n, nrow=min(q.nrow, q.n),
                          spread=q.spread, truncation=q.truncation) if q.format == "png" else None
        return encode_image(grid_rgb(images, nrow=q.nrow), q.format, text)
    return Staged(model, lambda: edit_noise(variation_noise(q.seed, q.n, model.g.nz, q.spread, q.truncation),
                                            directions, q.edit), finish)


def render_strip(model: Loaded, q: StripQuery, directions: Directions | None = None,
                 latent: torch.Tensor | None = None) -> Staged:
    """The walk of `q`; with `latent` (q.latent's noise) it starts at that face instead of seed_a's."""
    start = {"latent": q.latent} if latent is not None else {"seed_a": q.seed_a}

    def finish(images: torch.Tensor) -> bytes:
        if q.format == "gif":
            return encode_gif(frames_rgb(images))
        text = model_text(model, "interpolation", q.edit, **start, seed_b=q.seed_b, faces=0,
                          steps=q.steps, truncation=q.truncation) if q.format == "png" else None
        return encode_image(grid_rgb(images, nrow=q.steps), q.format, text)
    return Staged(model, lambda: edit_noise(interpolation_noise(q.seed_a, q.seed_b, q.steps, model.g.nz,
                                                                q.truncation, start=latent),
                                            directions, q.edit), finish)


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


class _Batch:
    """Noise rows of one model's renders, gathered to run as one forward pass."""

    def __init__(self, model: Loaded) -> None:
        self.model = model
        self.items: list[tuple[torch.Tensor, asyncio.Future]] = []
        self.rows = 0
        self.due = False  # it starts as soon as a forward slot is free (and takes renders until then)
        self.started = False
        self.timer: asyncio.TimerHandle | None = None


class ForwardBatcher:
    """Shares G's forward passes between concurrent renders of the same model.

    A render reaching its forward pass joins its model's open batch (or opens one), up to
    `max_rows` noise rows (a render never splits across batches: one with more rows than that
    runs alone). The batch is due when no other render of the model is on its way (admitted and
    computing its noise: `expect`/`arrived`), when it is full, or at the latest `window` seconds
    after it opened; a lone render therefore waits for nobody. A due batch runs as soon as fewer
    than `slots` passes are running, and takes renders until it starts: under load, batches grow
    instead of queueing. A render whose caller goes away before its batch starts is taken out of
    it. (With the window at 0 the Renderer does not use it.)
    """

    def __init__(self, pool: ThreadPoolExecutor, window: float, max_rows: int, slots: int) -> None:
        self.window = window
        self.max_rows = max_rows
        self.slots = slots
        self._pool = pool
        self._gathering: dict[str, _Batch] = {}  # model identity -> its batch that takes renders
        self._due: list[_Batch] = []  # batches waiting for a slot, oldest first
        self._running = 0
        self._coming: dict[str, int] = {}  # model identity -> renders computing their noise
        self.passes = 0  # forward passes run (tests and benchmarks read it)

    def expect(self, model: Loaded) -> None:
        """A render of `model` will reach its forward pass soon (its noise is being computed)."""
        self._coming[model.identity] = self._coming.get(model.identity, 0) + 1

    def arrived(self, model: Loaded) -> None:
        """That render reached its forward pass, or will not."""
        left = self._coming[model.identity] - 1
        if left:
            self._coming[model.identity] = left
        else:
            del self._coming[model.identity]

    async def forward(self, model: Loaded, noise: torch.Tensor) -> tuple[torch.Tensor, float, int]:
        """(G's images for `noise`, seconds the shared pass took, rows in it)."""
        loop = asyncio.get_running_loop()
        batch = self._gathering.get(model.identity)
        if batch is not None and batch.rows + len(noise) > self.max_rows:
            del self._gathering[model.identity]  # full: it takes no more
            self._close(batch)
            batch = None
        if batch is None:
            batch = self._gathering[model.identity] = _Batch(model)
            batch.timer = loop.call_later(self.window, self._close, batch)
        future = loop.create_future()
        item = (noise, future)
        batch.items.append(item)
        batch.rows += len(noise)
        if batch.rows >= self.max_rows:
            del self._gathering[model.identity]
            self._close(batch)
        elif not self._coming.get(model.identity):  # nobody else is on the way: no reason to wait
            self._close(batch)
        try:
            return await future
        except asyncio.CancelledError:
            if not batch.started:
                batch.items = [x for x in batch.items if x is not item]  # (by identity: tensors inside)
                batch.rows = sum(len(n) for n, _ in batch.items)
            raise

    def _close(self, batch: _Batch) -> None:
        """The batch is due: it runs now or when a slot frees."""
        if batch.due:
            return
        batch.due = True
        if batch.timer is not None:
            batch.timer.cancel()
        self._due.append(batch)
        self._start_due()

    def _start_due(self) -> None:
        while self._due and self._running < self.slots:
            batch = self._due.pop(0)
            batch.started = True
            if self._gathering.get(batch.model.identity) is batch:
                del self._gathering[batch.model.identity]
            live = [(noise, f) for noise, f in batch.items if not f.done()]
            if live:
                self._running += 1
                asyncio.get_running_loop().create_task(self._run(batch.model, live))

    async def _run(self, model: Loaded, items: list[tuple[torch.Tensor, asyncio.Future]]) -> None:
        try:
            self.passes += 1
            noise = torch.cat([n for n, _ in items]) if len(items) > 1 else items[0][0]
            images, seconds = await asyncio.get_running_loop().run_in_executor(
                self._pool, _timed, run_generator, model.g, noise)
        except BaseException as exc:  # every render of the batch gets the error
            for _, f in items:
                if not f.done():
                    f.set_exception(exc)
                    f.exception()  # retrieved: a cancelled render's error is not logged
            if not isinstance(exc, Exception):
                raise
        else:
            start = 0
            for n, f in items:
                if not f.done():
                    f.set_result((images[start:start + len(n)], seconds, len(noise)))
                start += len(n)
        finally:
            self._running -= 1
            self._start_due()


class Renderer:
    def __init__(self, cache_bytes: int, concurrency: int, queue: int, streams: int,
                 batch_window_ms: float = 0.0, batch_rows: int = 64) -> None:
        self.cache = ByteLRU(cache_bytes)
        self.concurrency = concurrency
        self.queue = queue
        self.streams = streams
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="render",
                                        initializer=partial(thread_priority, 10))
        # One thread: the admitted streams take turns, a chunk each (each asks for its next
        # chunk only once the last one is sent), so they share it fairly.
        self._stream_pool = ThreadPoolExecutor(1, thread_name_prefix="render-stream",
                                               initializer=partial(thread_priority, 19))
        self._streams = Places(streams, Busy)
        self._waiting = 0
        self._inflight: dict[str, asyncio.Future] = {}
        self.batcher = ForwardBatcher(self._pool, batch_window_ms / 1000, batch_rows, concurrency)

    async def _compute(self, work: Staged | Callable[[], bytes], timing: Timing) -> bytes:
        loop = asyncio.get_running_loop()
        admitted = time.perf_counter()
        if not isinstance(work, Staged):
            body, timing.render = await loop.run_in_executor(self._pool, _timed, work)
            timing.wait = time.perf_counter() - admitted - timing.render
            return body
        if self.batcher.window <= 0:  # unbatched: the three steps in one thread hop
            self.batcher.passes += 1
            return await loop.run_in_executor(self._pool, work.timed, timing, admitted)
        self.batcher.expect(work.model)
        try:
            noise, timing.noise = await loop.run_in_executor(self._pool, _timed, work.noise)
        finally:
            self.batcher.arrived(work.model)
        images, timing.g, timing.faces = await self.batcher.forward(work.model, noise)
        body, timing.encode = await loop.run_in_executor(self._pool, _timed, work.finish, images)
        timing.wait = time.perf_counter() - admitted - timing.noise - timing.g - timing.encode
        return body

    def open_stream(self) -> Callable[[], None]:
        """Admit one more streamed answer, or raise Busy when `streams` are streaming already.
        Returns its release, to be called when the answer ends, however it ends (once or more)."""
        return self._streams.take()

    async def stream_chunk(self, work: Callable[[], bytes]) -> bytes:
        """`work()`, one chunk of an admitted stream, on the streams' lane; uncached."""
        return await asyncio.get_running_loop().run_in_executor(self._stream_pool, work)

    async def get(self, key: str, work: Staged | Callable[[], bytes],
                  timing: Timing | None = None) -> tuple[bytes, bool]:
        """(body, came_from_cache) for `key`, computing `work()` in a thread when needed (a
        Staged render's forward pass through the batcher); `timing` says where the time of a
        render went (left as it is for a cache hit or a render shared with another request)."""
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
            body = await self._compute(work, timing if timing is not None else Timing())
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
