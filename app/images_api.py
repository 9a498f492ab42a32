"""GET /generate and GET /interpolate: images from seeded noise, rendered off the event loop.

The routes are made per app by `router(settings)`, so the caps in their parameters (and in the
OpenAPI schema clients read) are the ones the app was created with. (No postponed annotations
here: FastAPI reads the parameters' types when the routes are made, and the capped ones are local.)
"""
from collections.abc import Callable
from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, Header, Query, Request, Response

from app.deps import DirectionsDep, RegistryDep, RendererDep
from app.directions import Edit, parse_edit_query
from app.errors import BadQuery, Missing, problems
from app.latents import LATENT_ID_PATTERN, LatentStore, StoredLatent
from app.registry import Busy, Loaded, ModelRegistry
from app.render import (
    GridQuery,
    Staged,
    StripQuery,
    Timing,
    VariationsQuery,
    etag,
    render_grid,
    render_strip,
    render_variations,
)
from app.schemas import WrittenAsInteger
from app.settings import Settings
from model.imageio import FORMATS

MEDIA = {**FORMATS, "gif": "image/gif"}
Seed = Annotated[int, Query(ge=0, le=2**32 - 1, description="noise seed: same seed, same faces"), WrittenAsInteger]
Truncation = Annotated[float | None, Query(gt=0, le=10, description="redraw noise beyond +-truncation")]
JobQ = Annotated[str | None, Query(max_length=64, description="job id (default: the served model)")]
EpochQ = Annotated[int | None, Query(ge=1, le=100_000, description="checkpoint epoch of that job"),
                   WrittenAsInteger]
LatentQ = Annotated[str | None, Query(pattern=LATENT_ID_PATTERN, description=(
    "a latent POST /project found (its ID): its face, drawn with the checkpoint it was projected on "
    "unless job/epoch are given"))]


def _image_responses(*media: str) -> dict:
    return {200: {"content": {MEDIA[m]: {} for m in media},
                  "description": "the image; ETag, Cache-Control and X-Checkpoint headers"},
            **problems(304, 404, 422, 503)}


async def _model(registry: ModelRegistry, job: str | None, epoch: int | None) -> Loaded:
    hot = registry.cached(job, epoch)  # the common case: no thread hop, no file system
    if hot is not None:
        return hot
    return await anyio.to_thread.run_sync(registry.get, job, epoch)


async def _latent_model(request: Request, registry: ModelRegistry, latent_id: str, job: str | None,
                        epoch: int | None, conflicts: dict[str, str]) -> tuple[StoredLatent, Loaded]:
    """The stored latent and the model to draw it with: the checkpoint it was projected on (its
    generator's checksum must still match), or job/epoch when given (epoch alone: of the latent's
    job), whose G must take noise of the latent's size. `conflicts` maps each parameter that
    cannot go with a latent to why: given ones are a 422 naming them."""
    latents: LatentStore = request.app.state.latents
    stored = await anyio.to_thread.run_sync(latents.load, latent_id)
    given = [f"{name} ({why})" for name, why in conflicts.items() if name in request.query_params]
    if given:
        raise BadQuery(f"latent cannot go with {', '.join(given)}")
    if job is None and epoch is None:
        model = await _model(registry, stored.job_id, stored.epoch)
        if model.checksum != stored.checksum:
            raise Missing(f"the checkpoint latent {stored.id} was projected on ({stored.job_id}/{stored.checkpoint}, "
                          f"{stored.checksum}) is no longer served; name job and epoch to draw it with another")
        return stored, model
    model = await _model(registry, job if job is not None else stored.job_id, epoch)
    if model.g.nz != stored.nz:
        raise BadQuery(f"latent {stored.id} has {stored.nz} values and {model.tag}'s generator takes "
                       f"{model.g.nz}: use a checkpoint of the same shape")
    return stored, model


async def _answer(request: Request, renderer, model: Loaded, query, work: Staged | Callable[[], bytes],
                  media_type: str, pinned: bool, if_none_match: str | None) -> Response:
    tag = etag(model, query)
    headers = {"ETag": tag, "X-Checkpoint": model.tag,
               # A pinned (job, epoch) never changes: cache it for good. "The newest model"
               # does change, so caches must revalidate (cheap: a 304 costs no rendering).
               "Cache-Control": "public, max-age=31536000, immutable" if pinned else "no-cache"}
    if if_none_match and tag in [t.strip() for t in if_none_match.split(",")]:
        request.app.state.metrics.not_modified.inc()
        return Response(status_code=304, headers=headers)
    timing = Timing()
    try:
        body, hit = await renderer.get(tag, work, timing)
    except Busy:
        request.app.state.metrics.busy.inc()
        raise Busy("busy rendering other images; retry in a second") from None
    (request.app.state.metrics.cache_hits if hit else request.app.state.metrics.cache_misses).inc()
    if timing.faces or timing.render:  # this request rendered it (not a cache hit, nor another's render)
        headers["Server-Timing"] = timing.header()
    return Response(body, media_type=media_type, headers={**headers, "X-Cache": "hit" if hit else "miss"})


def router(settings: Settings) -> APIRouter:
    """The image routes, with `settings`' caps on n, best_of and steps."""
    routes = APIRouter(tags=["images"])
    GridN = Annotated[int, Query(ge=1, le=settings.max_n, description="images in the grid"), WrittenAsInteger]
    BestOf = Annotated[int | None, Query(ge=1, le=settings.max_best_of,
                                         description="draw this many candidates and keep the n that D scores "
                                                     "highest, best first (at least n are drawn)"),
                      WrittenAsInteger]
    Steps = Annotated[int, Query(ge=2, le=settings.max_interpolate_steps, description="faces in the strip"),
                      WrittenAsInteger]

    @routes.get("/generate", response_class=Response, responses=_image_responses("png", "jpeg", "webp"),
                summary="A grid of faces from seeded noise",
                description="Image i of a seed is the same face whatever n is. Same query and same "
                            "checkpoint give byte-identical bytes. latent=ID (from POST /project) draws "
                            "that latent's face instead: one face, so n is 1 and seed, best_of and "
                            "truncation are not given (422 naming them otherwise); edit moves it too.")
    async def generate_grid(request: Request, registry: RegistryDep, renderer: RendererDep, cache: DirectionsDep,
                            seed: Seed = 42, n: GridN = 64,
                            nrow: Annotated[int, Query(ge=1, le=64, description="images per row"),
                                            WrittenAsInteger] = 8,
                            best_of: BestOf = None, truncation: Truncation = None,
                            format: Literal["png", "jpeg", "webp"] = "png", edit: Edit = None,
                            job: JobQ = None, epoch: EpochQ = None, latent: LatentQ = None,
                            if_none_match: Annotated[str | None, Header(max_length=1024)] = None) -> Response:
        edits = parse_edit_query(edit)
        if latent is not None:
            stored, model = await _latent_model(request, registry, latent, job, epoch, {
                "seed": "the latent is the face's noise", "best_of": "one face, no candidates",
                "truncation": "the latent is used as it is"} | ({"n": "a latent is one face: n=1"} if n != 1 else {}))
            edits, directions = await cache.for_edits(model, edit, edits)
            query = GridQuery(0, 1, 1, None, None, format, edits, latent=stored.id)
            return await _answer(request, renderer, model, query,
                                 render_grid(model, query, directions, stored.noise()), MEDIA[format],
                                 pinned=epoch is not None or job is None, if_none_match=if_none_match)
        model = await _model(registry, job, epoch)
        edits, directions = await cache.for_edits(model, edit, edits)
        candidates = max(best_of, n) if best_of is not None else None
        query = GridQuery(seed, n, nrow, candidates, truncation, format, edits)
        return await _answer(request, renderer, model, query, render_grid(model, query, directions), MEDIA[format],
                             pinned=job is not None and epoch is not None, if_none_match=if_none_match)

    @routes.get("/variations", response_class=Response, responses=_image_responses("png", "jpeg", "webp"),
                summary="Faces near one face: face 0 of a seed, then n-1 variations of it",
                description="Tile 0 is face 0 of the seed (the face /generate?seed=S&n=1 shows); tile k "
                            "adds `spread` times the k-th seeded offset to its noise (rescaled to stay a "
                            "standard normal draw). Deterministic like /generate: same query and "
                            "checkpoint, same bytes; tile k does not depend on n.")
    async def variations_grid(request: Request, registry: RegistryDep, renderer: RendererDep,
                              cache: DirectionsDep,
                              seed: Seed = 42, n: GridN = 16,
                              nrow: Annotated[int, Query(ge=1, le=64, description="images per row"),
                                              WrittenAsInteger] = 8,
                              spread: Annotated[float, Query(gt=0, le=2, description=(
                                  "how far from the face: 0.1 near twins, 0.5 cousins, 1 and more strangers"
                              ))] = 0.3,
                              truncation: Truncation = None,
                              format: Literal["png", "jpeg", "webp"] = "png", edit: Edit = None,
                              job: JobQ = None, epoch: EpochQ = None,
                              if_none_match: Annotated[str | None, Header(max_length=1024)] = None
                              ) -> Response:
        edits = parse_edit_query(edit)
        model = await _model(registry, job, epoch)
        edits, directions = await cache.for_edits(model, edit, edits)
        query = VariationsQuery(seed, n, nrow, spread, truncation, format, edits)
        return await _answer(request, renderer, model, query, render_variations(model, query, directions),
                             MEDIA[format],
                             pinned=job is not None and epoch is not None, if_none_match=if_none_match)

    @routes.get("/interpolate", response_class=Response,
                responses=_image_responses("png", "jpeg", "webp", "gif"),
                summary="A walk between two seeds' faces",
                description="A strip of `steps` faces from image 0 of seed_a (or from a projected latent's "
                            "face: latent=ID, without seed_a) to image 0 of seed_b (spherical "
                            "interpolation); format=gif animates it back and forth.")
    async def interpolate_strip(request: Request, registry: RegistryDep, renderer: RendererDep,
                                cache: DirectionsDep,
                                seed_a: Seed = 1, seed_b: Seed = 2, steps: Steps = 8,
                                truncation: Truncation = None,
                                format: Literal["png", "jpeg", "webp", "gif"] = "png", edit: Edit = None,
                                job: JobQ = None, epoch: EpochQ = None, latent: LatentQ = None,
                                if_none_match: Annotated[str | None, Header(max_length=1024)] = None
                                ) -> Response:
        edits = parse_edit_query(edit)
        if latent is not None:
            stored, model = await _latent_model(request, registry, latent, job, epoch,
                                                {"seed_a": "the walk starts at the latent's face"})
            edits, directions = await cache.for_edits(model, edit, edits)
            query = StripQuery(0, seed_b, steps, truncation, format, edits, latent=stored.id)
            return await _answer(request, renderer, model, query,
                                 render_strip(model, query, directions, stored.noise()), MEDIA[format],
                                 pinned=epoch is not None or job is None, if_none_match=if_none_match)
        model = await _model(registry, job, epoch)
        edits, directions = await cache.for_edits(model, edit, edits)
        query = StripQuery(seed_a, seed_b, steps, truncation, format, edits)
        return await _answer(request, renderer, model, query, render_strip(model, query, directions), MEDIA[format],
                             pinned=job is not None and epoch is not None, if_none_match=if_none_match)

    return routes
