"""GET /jobs/{job_id}/export (a job's generator as one file) and GET /faces.zip (one PNG per seed).

Both send their bytes as a stream: the export from a temp file deleted as soon as it is open,
the zip chunk by chunk as the faces are rendered, so neither holds a whole answer in memory.
"""
from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Literal

import anyio.to_thread
from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from app.deps import Authorized, RegistryDep, RendererDep, SettingsDep, StoreDep
from app.errors import CannotExport, FormatUnavailable, Missing, problems
from app.images_api import EpochQ, JobQ, Truncation
from app.jobs_api import JobId
from app.registry import Busy, Loaded, ModelRegistry, checkpoint_tag
from app.render import GridQuery, grid_text
from app.schemas import Problem, WrittenAsInteger
from app.settings import Settings
from app.zipstream import ZipWriter
from model.checkpoint import CheckpointError, epoch_end, list_checkpoints
from model.export import FORMATS, ExportError, export_run
from model.faces import chunked, face_name, render_faces
from model.rundir import RunDir, epochs_text
from model.seeds import SEEDS_PATTERN, SeedsError, parse_seeds
from worker.errors import JobNotFound

# One export at a time per process: torch's exporters keep global state, and each takes a core.
_EXPORT_SLOT = threading.BoundedSemaphore(1)
_READ_BYTES = 1 << 20


def _file_chunks(f: BinaryIO) -> Iterator[bytes]:
    with f:
        while chunk := f.read(_READ_BYTES):
            yield chunk


def _build_export(run: RunDir, job_id: str, epoch: int | None, fmt: str) -> tuple[BinaryIO, str, str]:
    """(open file, download name, checkpoint name). The file is already unlinked: its space is
    freed when the response closes it, however the download ends."""
    fd, tmp = tempfile.mkstemp(prefix="dcgan-export-", suffix=FORMATS[fmt])
    os.close(fd)
    try:
        done = export_run(run.checkpoints, epoch, fmt, Path(tmp), job_id)
        f = open(tmp, "rb")  # noqa: SIM115 - closed by _file_chunks when the response ends
    finally:
        os.unlink(tmp)
    return f, f"{job_id}-{done.checkpoint.path.stem}{FORMATS[fmt]}", done.checkpoint.name


def export_job(job_id: JobId, store: StoreDep,
               epoch: Annotated[int | None, Query(ge=1, le=100_000,
                                                  description="checkpoint epoch (default: the newest)"),
                                WrittenAsInteger] = None,
               format: Literal[tuple(FORMATS)] = "safetensors") -> StreamingResponse:
    run = RunDir(store.run_dir(job_id))
    if not run.root.is_dir():
        raise JobNotFound(job_id)
    refs = list_checkpoints(run.checkpoints)
    if epoch is not None and epoch_end(refs, epoch) is None:
        have = epochs_text(r.epoch for r in refs if r.ends_epoch)
        raise Missing(f"job {job_id} has no checkpoint for epoch {epoch}; its epochs: {have}")
    if not refs:
        raise Missing(f"job {job_id} has no checkpoint yet; try again after its first epoch")
    if not _EXPORT_SLOT.acquire(blocking=False):
        raise Busy()
    try:
        f, filename, checkpoint = _build_export(run, job_id, epoch, format)
    except CheckpointError as exc:
        raise CannotExport(f"cannot export job {job_id}: {exc}") from None
    except ExportError as exc:  # the format's library is missing here, or torch's exporter failed
        raise FormatUnavailable(f"this server cannot write {format} files: {exc}") from None
    finally:
        _EXPORT_SLOT.release()
    return StreamingResponse(_file_chunks(f), media_type="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Content-Length": str(os.fstat(f.fileno()).st_size),
        "X-Checkpoint": checkpoint_tag(job_id, checkpoint),
        "Cache-Control": "no-store"})


# -- GET /faces.zip ---------------------------------------------------------------------------
class _AdmittedStream(StreamingResponse):
    """A streamed answer that frees its admission when it ends, however it ends: finished, the
    client gone mid-stream, or gone before its body ever started (a generator's own `finally`
    would not run then)."""

    def __init__(self, body: AsyncIterator[bytes], release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(body, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


async def zip_body(model: Loaded, seeds: Sequence[int], truncation: float | None,
                   run: Callable[[Callable[[], bytes]], Awaitable[bytes]]) -> AsyncIterator[bytes]:
    """The zip of each seed's face, one chunk of faces at a time: a chunk is rendered only
    after the previous one has been handed on, so one chunk's PNGs is all it ever holds."""
    writer = ZipWriter()

    def chunk_bytes(part: Sequence[int]) -> bytes:
        pngs = render_faces(model.g, part, truncation,
                            lambda s: grid_text(model, GridQuery(s, 1, 1, None, truncation, "png")))
        return b"".join(writer.add(face_name(s), png) for s, png in zip(part, pngs, strict=True))

    for part in chunked(seeds):
        yield await run(lambda part=part: chunk_bytes(part))
    yield writer.finish()


async def _model(registry: ModelRegistry, job: str | None, epoch: int | None) -> Loaded:
    hot = registry.cached(job, epoch)
    return hot if hot is not None else await anyio.to_thread.run_sync(registry.get, job, epoch)


async def faces_zip(registry: RegistryDep, renderer: RendererDep, settings: SettingsDep,
                    seeds: Annotated[str, Query(
                        max_length=1000,
                        # In the schema only: parse_seeds refuses exactly what it does not match,
                        # saying which part is wrong (a pattern mismatch would just quote it).
                        json_schema_extra={"pattern": SEEDS_PATTERN},
                        description="seeds (0 to 4294967295, leading zeros allowed) and inclusive ranges, "
                                    "in order, each once: 0-9,42 is seeds 0 to 9, then 42; a reversed "
                                    "range or too many seeds is a 422",
                        examples=["0-99"])],
                    truncation: Truncation = None, job: JobQ = None, epoch: EpochQ = None) -> StreamingResponse:
    try:
        seed_list = parse_seeds(seeds, settings.max_zip_faces, spaces=False)
    except SeedsError as exc:
        raise RequestValidationError([{"type": "value_error", "loc": ("query", "seeds"), "msg": str(exc),
                                       "input": seeds}]) from None
    model = await _model(registry, job, epoch)
    release = renderer.open_stream()  # nothing between here and the answer can fail
    body = zip_body(model, seed_list, truncation, renderer.stream_chunk)
    return _AdmittedStream(body, release, media_type="application/zip", headers={
        "Content-Disposition": 'attachment; filename="faces.zip"',
        "X-Checkpoint": model.tag,
        "Cache-Control": "no-cache"})


def router(settings: Settings) -> APIRouter:
    """The export and zip routes, made per app: the zip's description states `settings`' cap."""
    routes = APIRouter()
    routes.get("/jobs/{job_id}/export", tags=["models"], response_class=StreamingResponse,
               dependencies=[Authorized],
               responses={200: {"content": {"application/octet-stream": {}},
                                "description": "the generator file, as an attachment; X-Checkpoint names its "
                                               "checkpoint"},
                          **problems(401, 404, 409, 422, 503)},
               summary="A job's generator as one file (safetensors or ONNX)",
               description="The generator /generate samples with (EMA weights when the job kept them) and "
                           "its config (nz, ngf, arch, image size, epoch, job) in the file's metadata. "
                           "safetensors loads with the `safetensors` package alone; the ONNX net runs in "
                           "onnxruntime: input `noise` (N, nz, 1, 1) float32, output `images` "
                           "(N, 3, 96, 96) in [-1, 1]. 409: the checkpoint does not load; 503: another "
                           "export is running (Retry-After) or this server cannot write the format.")(export_job)
    routes.get("/faces.zip", tags=["images"], response_class=StreamingResponse,
               responses={200: {"content": {"application/zip": {}},
                                "description": "a zip of seedNNNN.png files, streamed as they render; "
                                               "X-Checkpoint names the checkpoint"},
                          **problems(404, 422, 503),
                          # what the seeds pattern cannot say, said here
                          422: {"model": Problem, "description": "Invalid parameters (the detail names each "
                                "one); `seeds` that match its pattern are still refused for a reversed range "
                                f"(9-0) or more than {settings.max_zip_faces} distinct seeds (MAX_ZIP_FACES)"},
                          503: {"model": Problem, "description": f"No model yet, or {settings.max_zip_streams} "
                                "zips are streaming already (MAX_ZIP_STREAMS; Retry-After)"}},
               summary="One PNG per seed, as a zip",
               description="Member `seedNNNN.png` is the face of seed NNNN: byte for byte what "
                           "/generate?seed=NNNN&n=1 returns with the same job, epoch and truncation. "
                           f"At most {settings.max_zip_faces} distinct seeds (MAX_ZIP_FACES).")(faces_zip)
    return routes
