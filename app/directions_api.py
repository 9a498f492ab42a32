"""GET /directions: a checkpoint's latent directions (computed and cached by app/directions.py)."""
from __future__ import annotations

from fastapi import APIRouter, Response

from app.deps import DirectionsDep, RegistryDep
from app.errors import problems
from app.images_api import EpochQ, JobQ, _model
from app.schemas import DirectionInfo, DirectionsInfo
from model.directions import FEATURES, MAX_AMOUNT, MAX_EDITS, SAMPLES

router = APIRouter(tags=["images"])


@router.get("/directions", response_model=DirectionsInfo, responses=problems(404, 422, 503),
            summary="The model's latent directions, for edit=K:AMOUNT",
            description="Principal directions of the generator's early features (GANSpace), computed "
                        f"once per checkpoint from {SAMPLES} seeded noise vectors and cached: each "
                        "`index` is usable as `edit=index:amount` on /generate, /variations and "
                        "/interpolate, where amount is in standard deviations of the noise along it. "
                        "`variance` is the component's share of the features' variance (descending). "
                        "The first request for a checkpoint computes them (seconds); later ones are "
                        "immediate.")
async def directions(response: Response, registry: RegistryDep, cache: DirectionsDep,
                     job: JobQ = None, epoch: EpochQ = None) -> DirectionsInfo:
    model = await _model(registry, job, epoch)
    found = await cache.get(model)
    response.headers["X-Checkpoint"] = model.tag
    return DirectionsInfo(
        job_id=model.job_id, checkpoint=model.ref.name, epoch=model.ref.epoch, checksum=found.checksum,
        directions=[DirectionInfo(index=k, variance=v, scale=s)
                    for k, (v, s) in enumerate(zip(found.variance, found.scales, strict=True))],
        samples=SAMPLES, features=FEATURES, max_amount=MAX_AMOUNT, max_edits=MAX_EDITS)
