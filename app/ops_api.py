"""Liveness, readiness and Prometheus metrics."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.deps import RegistryDep, SettingsDep
from app.registry import BadModelRequest, Busy, NoModel
from app.schemas import Health

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz(settings: SettingsDep) -> Health:
    return Health(status="ok", mode=settings.broker_mode)


@router.get("/readyz", response_model=Health,
            responses={503: {"model": Health, "description": "no generator can be loaded yet"}},
            summary="A generator is loaded: 'ready', or 'degraded' when the newest checkpoint is "
                    "damaged and an older one is served")
def readyz(registry: RegistryDep, settings: SettingsDep):
    mode = settings.broker_mode
    try:
        model, problems = registry.status()
    except (NoModel, BadModelRequest, Busy) as exc:
        return JSONResponse(Health(status="no model", problems=[str(exc) or "busy"], mode=mode).model_dump(),
                            status_code=503)
    return Health(status="degraded" if problems else "ready", model=registry.describe(model),
                  problems=problems, mode=mode)


@router.get("/metrics", response_class=PlainTextResponse,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
            summary="Prometheus metrics")
def metrics(request: Request) -> PlainTextResponse:
    data = generate_latest(request.app.state.metrics.registry)
    return PlainTextResponse(data, media_type=CONTENT_TYPE_LATEST)
