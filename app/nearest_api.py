"""GET /nearest (the training images closest to a generated face) and the training images
themselves (GET /jobs/{id}/training-images/{index}.png), on the job's decoded dataset cache.

The search space and its cost are model/nearest.py's: one index per dataset fingerprint, built
on the first request (one pass over the memory-mapped cache) and kept for the newest MAX_INDEXES
datasets; a query is one pass over the index. Searches run as renders do (app/render.py: at most
RENDER_CONCURRENCY at once, RENDER_QUEUE waiting, beyond that a 503; answers cached by ETag).
"""
import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import torch
from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam

from app.default_model import read_small_json
from app.deps import RegistryDep, RendererDep, SettingsDep, StoreDep
from app.errors import Missing, problems
from app.images_api import EpochQ, JobQ, LatentQ, Seed, Truncation, _latent_model, _model
from app.jobs_api import JobId
from app.registry import Busy, Loaded
from app.render import etag
from app.schemas import WrittenAsInteger
from app.settings import Settings
from model.data import default_cache_dir
from model.imageio import encode_png, to_uint8
from model.nearest import METRIC, NearestIndex, block_features, open_dataset
from model.provenance import provenance
from model.rundir import RunDir
from model.sampling import MAX_INDEX, run_generator, sample_noise
from worker.errors import JobNotFound
from worker.store import JobStore

MAX_INDEXES = 2
MAX_K = 32
_indexes: OrderedDict[str, NearestIndex] = OrderedDict()
_indexes_lock = threading.Lock()
_build_lock = threading.Lock()


@dataclass(frozen=True)
class NearestQuery:
    seed: int
    i: int
    k: int
    truncation: float | None
    latent: str | None = None  # a stored latent's ID: its face instead of face i of the seed


def _dataset(store: JobStore, settings: Settings, job_id: str) -> tuple[str, np.ndarray]:
    """(fingerprint, memory-mapped images) of the job's training data, or Missing."""
    run = RunDir(store.run_dir(job_id))
    data = read_small_json(run.data_path)
    fp = data.get("fingerprint") if isinstance(data, dict) else None
    fp = fp if isinstance(fp, str) and re.fullmatch(r"[0-9a-zA-Z_-]{1,128}", fp) else None  # a file name part
    try:
        config = store.read(job_id).config
    except JobNotFound:
        raise
    except Exception:  # a damaged record: the images are still there, at the default size
        config = None
    size = int(config.get("image_size", 96)) if isinstance(config, dict) else 96
    images = open_dataset([settings.cache_dir, default_cache_dir()], fp, size) if fp else None
    if images is None:
        raise Missing(f"the training images of job {job_id} are not decoded on this server")
    count = data.get("images")
    if isinstance(count, int) and 0 < count < len(images):
        images = images[:count]
    return fp, images


def _cached_index(fp: str) -> NearestIndex | None:
    with _indexes_lock:
        if fp in _indexes:
            _indexes.move_to_end(fp)
            return _indexes[fp]
    return None


def _index(fp: str, images: np.ndarray) -> NearestIndex:
    index = _cached_index(fp)
    if index is not None:
        return index
    with _build_lock:  # one build at a time: searches that arrive meanwhile wait for it, not redo it
        index = _cached_index(fp)
        if index is None:
            index = NearestIndex.build(images)  # seconds for 51,223 images
            index.reference()
            with _indexes_lock:
                _indexes[fp] = index
                while len(_indexes) > MAX_INDEXES:
                    _indexes.popitem(last=False)
    return index


def _search(model: Loaded, q: NearestQuery, fp: str, images: np.ndarray, latent: torch.Tensor | None = None
            ) -> bytes:
    noise = latent if latent is not None else sample_noise(q.seed, [q.i], model.g.nz, q.truncation)
    face = to_uint8(run_generator(model.g, noise)).numpy()
    index = _index(fp, images)
    found = index.nearest(block_features(face)[0], q.k)
    which = {"latent": q.latent} if latent is not None else {"seed": q.seed, "i": q.i}
    return json.dumps({
        "job_id": model.job_id, "checkpoint": model.ref.name, **which,
        "neighbours": [{"index": i, "distance": round(d, 3),
                        "url": f"/jobs/{model.job_id}/training-images/{i}.png"} for i, d in found],
        "reference": round(index.reference(), 3), "images": len(index), "metric": METRIC}).encode()


router = APIRouter(tags=["images"])


@router.get("/nearest", responses=problems(404, 422, 503),
            summary="The training images nearest to a generated face",
            description="Face `i` of `seed` (as /generate draws it), its `k` nearest training images of "
                        "the model's job, ascending, and `reference`: the median distance from a real "
                        "image to its nearest other real image. A neighbour much closer than `reference` "
                        "suggests a copy. `metric` says what the distance is. latent=ID (from POST "
                        "/project) searches for that latent's face instead (without seed, i or truncation).")
async def nearest(request: Request, registry: RegistryDep, renderer: RendererDep, store: StoreDep,
                  settings: SettingsDep, seed: Seed = 42,
                  i: Annotated[int, Query(ge=0, lt=MAX_INDEX, description="face index within the seed"),
                               WrittenAsInteger] = 0,
                  k: Annotated[int, Query(ge=1, le=MAX_K, description="neighbours to return"),
                               WrittenAsInteger] = 8,
                  truncation: Truncation = None, job: JobQ = None, epoch: EpochQ = None,
                  latent: LatentQ = None) -> Response:
    import anyio.to_thread
    if latent is not None:
        stored, model = await _latent_model(request, registry, latent, job, epoch, {
            "seed": "the latent is the face's noise", "i": "the latent is one face",
            "truncation": "the latent is used as it is"})
        query, noise = NearestQuery(0, 0, k, None, latent=stored.id), stored.noise()
    else:
        model = await _model(registry, job, epoch)
        query, noise = NearestQuery(seed, i, k, truncation), None
    fp, images = await anyio.to_thread.run_sync(_dataset, store, settings, model.job_id)
    try:
        body, hit = await renderer.get(etag(model, query), lambda: _search(model, query, fp, images, noise))
    except Busy:
        raise Busy("busy searching; retry in a second") from None
    return Response(body, media_type="application/json", headers={"X-Checkpoint": model.tag,
                                                                   "X-Cache": "hit" if hit else "miss"})


@router.get("/jobs/{job_id}/training-images/{index}.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}, "description": "the decoded training image"},
                       **problems(404, 422)},
            summary="One training image of a job, as the model saw it (decoded, 96x96)")
def training_image(job_id: JobId, index: Annotated[int, PathParam(ge=0, le=10_000_000), WrittenAsInteger],
                   store: StoreDep, settings: SettingsDep) -> Response:
    fp, images = _dataset(store, settings, job_id)
    if index >= len(images):
        raise Missing(f"job {job_id} has {len(images)} training images (0 to {len(images) - 1})")
    rgb = np.ascontiguousarray(np.asarray(images[index]).transpose(1, 2, 0))
    text = provenance(job_id, None, None, None, "training image", index=index, data_fingerprint=fp)
    return Response(encode_png(rgb, text=text), media_type="image/png",
                    headers={"Cache-Control": "public, max-age=3600"})
