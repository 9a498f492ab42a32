"""The FastAPI application: `uvicorn app.main:app`."""
from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from app import gallery, images_api, jobs_api, ops_api
from app.observability import BodyLimitMiddleware, LatencyMiddleware, Metrics
from app.registry import ModelRegistry
from app.render import Renderer
from app.settings import Settings, get_settings
from model.train import resolve_device
from worker.jobs import JobStore

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="DCGAN faces", version="0.1.0",
                  description="Train a DCGAN on face images and generate faces on demand. "
                              "State-changing endpoints need `Authorization: Bearer <API_TOKEN>`.")
    store = JobStore(settings.runs_dir)
    app.state.settings = settings
    app.state.store = store
    app.state.registry = ModelRegistry(settings.runs_dir, resolve_device(settings.device),
                                       settings.model_check_seconds)
    app.state.renderer = Renderer(settings.response_cache_bytes, settings.generate_concurrency,
                                  settings.generate_queue)
    app.state.metrics = Metrics(store)
    for router in (jobs_api.router, images_api.router, ops_api.router, gallery.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=gallery.STATIC_DIR), name="static")
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "If-None-Match"],
                           expose_headers=["ETag", "X-Checkpoint", "Retry-After"])
    app.add_middleware(LatencyMiddleware, metrics=app.state.metrics)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    return app


app = create_app()
