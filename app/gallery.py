"""GET /: the gallery page (server-rendered; a little JavaScript keeps it live)."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.deps import SettingsDep, StoreDep
from app.jobs_api import job_view
from model.rundir import RunDir

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")


def when(ts: float | None) -> str:
    """A record's timestamp as a date; '' for none, or for one no calendar has (1e300, NaN):
    a record is read from disk and one odd number must not break the page."""
    try:
        return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if ts else ""
    except (OverflowError, ValueError, OSError):
        return ""


templates.env.filters["when"] = when

router = APIRouter(tags=["gallery"])


@router.get("/", response_class=HTMLResponse,
            responses={200: {"content": {"text/html": {}}, "description": "the gallery page"}},
            summary="Gallery: every job's fixed-noise progression, curves, and a seed box")
def gallery(request: Request, store: StoreDep, settings: SettingsDep) -> HTMLResponse:
    jobs = [job_view(store, r, public=settings) for r in store.list()]
    reals = {j.job_id for j in jobs if RunDir(store.run_dir(j.job_id)).reals_path.is_file()}
    return templates.TemplateResponse(request, "gallery.html", {
        "jobs": jobs, "reals": reals, "mode": settings.broker_mode, "max_n": settings.max_n,
        "max_best_of": settings.max_best_of, "max_steps": settings.max_interpolate_steps})
