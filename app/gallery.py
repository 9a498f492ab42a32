"""GET /: the gallery page (server-rendered; a little JavaScript keeps it live)."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.deps import SettingsDep, StoreDep
from app.jobs_api import job_view

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["when"] = lambda ts: (datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
                                            if ts else "")

router = APIRouter(tags=["gallery"])


@router.get("/", response_class=HTMLResponse,
            responses={200: {"content": {"text/html": {}}, "description": "the gallery page"}},
            summary="Gallery: every job's fixed-noise progression, curves, and a seed box")
async def gallery(request: Request, store: StoreDep, settings: SettingsDep) -> HTMLResponse:
    records = await anyio.to_thread.run_sync(store.list)
    jobs = [job_view(store, r) for r in records]
    return templates.TemplateResponse(request, "gallery.html", {
        "jobs": jobs, "mode": "embedded" if settings.embedded else "redis", "max_n": settings.max_n})
