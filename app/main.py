"""The FastAPI application: `uvicorn app.main:app`."""
from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import (
    apidocs,
    directions_api,
    export_api,
    gallery,
    images_api,
    jobs_api,
    models_api,
    nearest_api,
    ops_api,
    project_api,
)
from app.directions import DirectionsCache
from app.errors import install_error_handlers
from app.latents import LatentStore
from app.middleware import BodyLimitMiddleware, FiniteNumbersMiddleware, SecurityHeadersMiddleware
from app.observability import LatencyMiddleware, Metrics
from app.queue import QueueSender, celery_sender
from app.registry import ModelRegistry
from app.render import Renderer
from app.settings import Settings, get_settings
from model.backends import resolve_backend
from model.runtime import limit_malloc_arenas, resolve_device
from worker.store import JobStore

log = logging.getLogger(__name__)


def _leaf_routes(routes):
    """Every endpoint route, looking inside included routers (which FastAPI may wrap)."""
    for route in routes:
        inner = getattr(getattr(route, "original_router", None), "routes", None)
        if inner is not None:
            yield from _leaf_routes(inner)
        else:
            yield route


async def _http_error(request: Request, exc: StarletteHTTPException):
    """FastAPI's own answer, except that an undecodable body is a 422 like any other invalid
    input, and a 405 lists every method of the path in `Allow` (Starlette names only the first
    route that matched)."""
    if exc.status_code == 400:  # a body that is not even decodable: invalid input like any other
        exc = StarletteHTTPException(422, f"invalid request body: {exc.detail}")
    if exc.status_code == 405:
        allowed = sorted({m for r in _leaf_routes(request.app.router.routes)
                          if isinstance(r, APIRoute) and r.path_regex.match(request.url.path)
                          for m in r.methods})
        exc.headers = {**(exc.headers or {}), "Allow": ", ".join(allowed)}
    return await http_exception_handler(request, exc)


def create_app(settings: Settings | None = None, enqueue: Callable[[str], None] | None = None) -> FastAPI:
    """The app for `settings` (default: the environment's): its caps, its store, its broker.
    `enqueue(job_id)` sends a job's wake-up message (default: by Celery task name, through a
    Celery app made from `settings`, bounded by BROKER_TIMEOUT); tests pass their own."""
    settings = settings or get_settings()
    limit_malloc_arenas()  # many threads run torch here; see model/runtime.py
    app = FastAPI(title="DCGAN faces", version="0.1.0",
                  description="Train a DCGAN on face images and generate faces on demand. "
                              "State-changing endpoints need `Authorization: Bearer <API_TOKEN>`.",
                  docs_url=None, redoc_url=None)  # app/apidocs.py serves both, offline
    store = JobStore(settings.runs_dir)
    app.state.settings = settings
    app.state.store = store
    app.state.enqueue = QueueSender(enqueue or celery_sender(settings), timeout=settings.broker_timeout + 1.0)
    device = resolve_device(settings.device)
    app.state.registry = ModelRegistry(settings.runs_dir, device, settings.model_check_seconds,
                                       backend=resolve_backend(settings.render_backend, device))
    app.state.renderer = Renderer(settings.response_cache_bytes, settings.generate_concurrency,
                                  settings.generate_queue, settings.max_zip_streams,
                                  settings.render_batch_window_ms, settings.render_batch_rows)
    app.state.directions = DirectionsCache(settings.cache_dir, app.state.renderer)
    app.state.projector = project_api.ProjectionLane(settings.project_concurrency, settings.project_queue)
    app.state.latents = LatentStore(settings.latents_dir, settings.max_latents)
    app.state.metrics = Metrics(store)
    # The routers whose bounds are settings are made for this app (their caps show in its schema).
    for router in (jobs_api.router(settings), images_api.router(settings), models_api.router,
                   export_api.router(settings), nearest_api.router, directions_api.router, project_api.router,
                   ops_api.router,
                   gallery.router):
        app.include_router(router)
    app.include_router(apidocs.router)
    app.mount("/static", StaticFiles(directory=gallery.STATIC_DIR), name="static")
    app.mount(apidocs.ASSETS_URL, apidocs.assets(), name="static-docs")
    app.add_exception_handler(StarletteHTTPException, _http_error)
    install_error_handlers(app)
    app.add_middleware(FiniteNumbersMiddleware)  # innermost: its 422s get CORS headers and are counted
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "If-None-Match"],
                           expose_headers=["ETag", "X-Checkpoint", "Retry-After"])
    app.add_middleware(LatencyMiddleware, metrics=app.state.metrics)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes, timeout=settings.body_timeout)
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: every answer has the headers
    return app


app = create_app()
