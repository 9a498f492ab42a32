"""Liveness, readiness and Prometheus metrics."""
from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.deps import RegistryDep, SettingsDep
from app.registry import BadModelRequest, NoModel
from app.schemas import Health, ModelInfo

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz(settings: SettingsDep) -> Health:
    return Health(status="ok", mode="embedded" if settings.embedded else "redis")


@router.get("/readyz", response_model=Health,
            responses={503: {"model": Health, "description": "no generator can be loaded yet"}},
            summary="A generator is loaded: 'ready', or 'degraded' when the newest checkpoint is "
                    "damaged and an older one is served")
async def readyz(registry: RegistryDep, settings: SettingsDep):
    mode = "embedded" if settings.embedded else "redis"
    try:
        model, problems = await anyio.to_thread.run_sync(registry.status)
    except (NoModel, BadModelRequest) as exc:
        return JSONResponse(Health(status="no model", problems=[str(exc)], mode=mode).model_dump(),
                            status_code=503)
    info = ModelInfo(job_id=model.job_id, checkpoint=model.ref.name, epoch=model.ref.epoch,
                     pinned=registry.pinned() is not None)
    return Health(status="degraded" if problems else "ready", model=info, problems=problems, mode=mode)


@router.get("/metrics", response_class=PlainTextResponse,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
            summary="Prometheus metrics")
async def metrics(request: Request) -> PlainTextResponse:
    data = await anyio.to_thread.run_sync(generate_latest, request.app.state.metrics.registry)
    return PlainTextResponse(data, media_type=CONTENT_TYPE_LATEST)
