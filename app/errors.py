"""How errors reach a client: the documented error answers of each route (for the OpenAPI
schema), and the one mapping from the job side's exceptions to HTTP status codes."""
from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.registry import BadModelRequest, Busy, NoModel
from app.schemas import Problem
from worker.datasource import DataSourceError
from worker.errors import BrokerUnavailable, JobConflict, JobDamaged, JobNotFound, StoreBusy
from worker.jobs import IdempotencyKeyReused, TooManyJobs


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        304: "Not modified: the If-None-Match ETag still matches",
        401: "Missing or wrong bearer token",
        404: "No such job, snapshot or checkpoint",
        409: "The job is in a state that does not allow this",
        413: "Request body too large",
        422: "Invalid parameters (the detail names each one)",
        429: "Too many jobs queued or running; retry later (Retry-After)",
        503: "Not available now: no model yet, the queue is unreachable, or the server is busy "
             "(Retry-After when retrying helps)",
    }
    out: dict[int | str, dict[str, Any]] = {}
    for c in codes:
        out[c] = {"description": text[c]} if c == 304 else {"model": Problem, "description": text[c]}
    return out


# exception -> (status, Retry-After seconds or None)
_STATUS: dict[type[Exception], tuple[int, int | None]] = {
    JobNotFound: (404, None), JobConflict: (409, None), TooManyJobs: (429, 5),
    IdempotencyKeyReused: (422, None), BrokerUnavailable: (503, 5), StoreBusy: (503, 1),
    DataSourceError: (422, None), JobDamaged: (409, None),
    NoModel: (503, 30), BadModelRequest: (404, None), Busy: (503, 1)}


def _detail(exc: Exception) -> str:
    if isinstance(exc, JobNotFound):
        return f"no job {exc.args[0] if exc.args else ''}".strip()
    if isinstance(exc, BrokerUnavailable):
        return f"{exc}; nothing was queued or changed, try again shortly"
    if isinstance(exc, JobDamaged):
        return f"the job's record is damaged: {exc}"
    if isinstance(exc, Busy):
        return "busy with other requests; retry in a second"
    return str(exc)


async def _handler(request: Request, exc: Exception) -> JSONResponse:
    status, retry_after = next(v for k, v in _STATUS.items() if isinstance(exc, k))
    if isinstance(exc, DataSourceError) and exc.kind == "missing":
        status = 404
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"detail": _detail(exc)}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    for kind in _STATUS:
        app.add_exception_handler(kind, _handler)
