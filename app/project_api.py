"""POST /project: find the latent whose face best reproduces an uploaded picture.

The picture is the raw request body (image/png, image/jpeg or image/webp), bounded like every
upload: MAX_BODY_BYTES (413), UPLOAD_MAX_PIXELS before a pixel is decoded, one frame only, and
only the decoder its Content-Type names (a JPEG sent as image/png is refused, never sniffed).
It is centre-cropped to a square and resized to the model's 96x96, as training images are
(model/data.py), then model/projection.py optimises a latent on the checkpoint's torch G.

Projections run on a lane of their own, not among the renders: one is hundreds of forward and
backward passes (seconds to tens of seconds), and in the render pool it would hold one of its
RENDER_CONCURRENCY threads that long and queue /generate behind it. The lane runs
PROJECT_CONCURRENCY at once (1: two would only share the same cores) at a lower CPU priority than
renders, with PROJECT_QUEUE more admitted to wait; beyond that the answer is 503 + Retry-After.
The same picture on the same checkpoint is answered from memory (and gets the same latent).
"""
import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from fastapi import APIRouter, Request

from app.deps import Authorized, RegistryDep, SettingsDep
from app.errors import BadUpload, CannotStore, ProjectionBusy, UnsupportedUpload, UploadTooLarge, problems
from app.images_api import EpochQ, JobQ, _model
from app.lanes import Places, thread_priority
from app.latents import LatentStore
from app.registry import Loaded, torch_generator
from app.schemas import Projected
from app.settings import Settings
from model.data import BadImage, decode_upload
from model.projection import project

# Content-Type -> the only decoder that may read the body
UPLOAD_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}
UPLOAD_MAX_PIXELS = 16_000_000  # a 4000x4000 photo; a bomb past it is refused before decoding
IMAGE_SIZE = 96  # what every G of this project draws (model/config.py: image_size)
REMEMBERED = 256  # answers kept per process, by (picture, checkpoint)


class ProjectionLane:
    """At most `concurrency` projections at once and `queue` waiting (counted on the event loop)."""

    def __init__(self, concurrency: int, queue: int) -> None:
        self.places = Places(concurrency + queue, ProjectionBusy)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="project",
                                        initializer=partial(thread_priority, 15))
        self._answers: OrderedDict[tuple[str, str], Projected] = OrderedDict()

    def admit(self) -> Callable[[], None]:
        """Take a place, or ProjectionBusy; returns its release (idempotent)."""
        return self.places.take()

    async def run(self, fn: Callable, *args) -> Projected:
        return await asyncio.get_running_loop().run_in_executor(self._pool, partial(fn, *args))

    def remembered(self, key: tuple[str, str]) -> Projected | None:
        answer = self._answers.get(key)
        if answer is not None:
            self._answers.move_to_end(key)
        return answer

    def remember(self, key: tuple[str, str], answer: Projected) -> None:
        self._answers[key] = answer
        while len(self._answers) > REMEMBERED:
            self._answers.popitem(last=False)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) past `limit` bytes without holding more than that."""
    parts, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise UploadTooLarge(f"request body over {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _project(model: Loaded, body: bytes, media: str, settings: Settings, latents: LatentStore) -> Projected:
    """Decode, project, store: in a lane thread."""
    kind = UPLOAD_FORMATS[media]
    try:
        target = decode_upload(body, IMAGE_SIZE, (kind,), UPLOAD_MAX_PIXELS)
    except BadImage as exc:
        reason = str(exc)
        if reason == "not an image":
            reason = f"not a {kind} image (its Content-Type says {media})"
        elif reason == "too many pixels":
            reason = f"more than {UPLOAD_MAX_PIXELS:,} pixels"
        raise BadUpload(f"the picture cannot be used: {reason}") from None
    g, _ = torch_generator(model)
    found = project(g, target, settings.project_steps, settings.project_starts,
                    settings.project_seconds)
    try:
        stored = latents.save(model.job_id, model.ref.epoch, model.ref.name, model.checksum or "unknown",
                              found.z, found.psnr)
    except OSError as exc:
        raise CannotStore(f"the latent could not be stored on this server ({type(exc).__name__}: "
                          f"{exc.strerror or 'write failed'}); try again later") from None
    return Projected(latent=stored.id, psnr=stored.psnr, job_id=model.job_id, epoch=model.ref.epoch,
                     checkpoint=model.tag, checkpoint_checksum=model.checksum, steps=found.steps,
                     seconds=round(found.seconds, 3), stopped=found.stopped,
                     url=f"/generate?latent={stored.id}&n=1", nearest_url=f"/nearest?latent={stored.id}")


_BODY = {"required": True, "description": "the picture: the raw bytes of one PNG, JPEG or WebP file",
         "content": {media: {"schema": {"type": "string", "format": "binary"}} for media in UPLOAD_FORMATS}}

router = APIRouter(tags=["images"])


@router.post("/project", response_model=Projected, dependencies=[Authorized],
             responses=problems(401, 404, 413, 415, 422, 503),
             openapi_extra={"requestBody": _BODY},
             summary="Find the latent whose face best reproduces a picture",
             description="The body is one picture (PNG, JPEG or WebP, one frame, at most MAX_BODY_BYTES and "
                         f"{UPLOAD_MAX_PIXELS:,} pixels), sent raw with its Content-Type. It is centre-cropped "
                         "to a square and resized to 96x96, then a latent is optimised (at most PROJECT_STEPS "
                         "steps and about PROJECT_SECONDS) on the checkpoint's generator: the served model, "
                         "or job/epoch. The latent is stored; latent=ID then draws its face in /generate, "
                         "/nearest and /interpolate. Projections beyond PROJECT_CONCURRENCY running and "
                         "PROJECT_QUEUE waiting get 503 with Retry-After.")
async def project_picture(request: Request, registry: RegistryDep, settings: SettingsDep,
                          job: JobQ = None, epoch: EpochQ = None) -> Projected:
    # Read here, not declared as a header parameter: the request body's media types say it.
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()[:100]
    if media not in UPLOAD_FORMATS:
        raise UnsupportedUpload(f"send the picture as the raw body with Content-Type {', '.join(UPLOAD_FORMATS)}"
                                f" (not {media or 'none'})")
    body = await _read_body(request, settings.max_body_bytes)
    model = await _model(registry, job, epoch)
    lane: ProjectionLane = request.app.state.projector
    latents: LatentStore = request.app.state.latents
    key = (hashlib.sha256(media.encode() + b"|" + body).hexdigest(), model.identity)
    answer = lane.remembered(key)
    if answer is not None and latents.exists(answer.latent):
        return answer
    release = lane.admit()
    try:
        answer = await lane.run(_project, model, body, media, settings, latents)
    finally:
        release()
    lane.remember(key, answer)
    return answer
