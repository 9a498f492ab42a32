"""How errors reach a client: the documented error answers of each route (for the OpenAPI
schema), and the one mapping from exceptions (the job side's and the routes' own) to HTTP status
codes and headers. Routes raise these exceptions, never an HTTPException of their own."""
from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.latents import LatentNotFound
from app.registry import BadModelRequest, Busy, NoModel
from app.schemas import Problem
from worker.datasource import DataSourceError
from worker.errors import BrokerUnavailable, JobConflict, JobDamaged, JobNotFound, StoreBusy
from worker.jobs import IdempotencyKeyReused, TooManyJobs


class Missing(Exception):
    """A file of an existing job that is not there (yet): a snapshot, the reals grid, a
    checkpoint. The message says which."""


class Unauthorized(Exception):
    def __init__(self) -> None:
        super().__init__("missing or wrong bearer token: send 'Authorization: Bearer <API_TOKEN>'")


class NoToken(Exception):
    def __init__(self) -> None:
        super().__init__("this server has no API_TOKEN set, so nothing can change state; "
                         "set API_TOKEN and restart it")


class CannotExport(Exception):
    """The checkpoint to export did not load (409: the job's files, not the request, are at fault)."""


class FormatUnavailable(Exception):
    """This server cannot write the asked-for export format (its library is missing, or torch's
    exporter failed)."""


class BadQuery(Exception):
    """Parameters that are each valid but do not go together (e.g. latent with seed); the
    message names them."""


class BadUpload(Exception):
    """An uploaded picture that cannot be used (not an image of its Content-Type, truncated,
    animated, too many pixels...); the message says what is wrong with it."""


class UploadTooLarge(Exception):
    """A request body over the route's limit (413)."""


class UnsupportedUpload(Exception):
    """An upload whose Content-Type is not one of the accepted ones (415)."""


class CannotStore(Exception):
    """A file the answer depends on could not be written (a full or read-only disk): 503."""


class ProjectionBusy(Exception):
    """As many projections running and waiting as this server allows."""

    def __init__(self) -> None:
        super().__init__("busy with other projections; retry in a few seconds")


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        304: "Not modified: the If-None-Match ETag still matches",
        401: "Missing or wrong bearer token",
        404: "No such job, snapshot or checkpoint",
        409: "The job is in a state that does not allow this",
        413: "Request body too large",
        415: "Unsupported Content-Type (the detail lists the accepted ones)",
        422: "Invalid parameters (the detail names each one)",
        429: "Too many jobs queued or running; retry later (Retry-After)",
        503: "Not available now: no model yet, the queue is unreachable, or the server is busy "
             "(Retry-After when retrying helps)",
    }
    out: dict[int | str, dict[str, Any]] = {}
    for c in codes:
        out[c] = {"description": text[c]} if c == 304 else {"model": Problem, "description": text[c]}
    return out


# exception -> (status, headers): Retry-After where retrying helps
_STATUS: dict[type[Exception], tuple[int, dict[str, str]]] = {
    JobNotFound: (404, {}), Missing: (404, {}), BadModelRequest: (404, {}), LatentNotFound: (404, {}),
    BadQuery: (422, {}), BadUpload: (422, {}), UnsupportedUpload: (415, {}),
    UploadTooLarge: (413, {}),
    ProjectionBusy: (503, {"Retry-After": "10"}), CannotStore: (503, {}),
    JobConflict: (409, {}), JobDamaged: (409, {}), CannotExport: (409, {}),
    TooManyJobs: (429, {"Retry-After": "5"}),
    IdempotencyKeyReused: (422, {}), DataSourceError: (422, {}),
    Unauthorized: (401, {"WWW-Authenticate": "Bearer"}),
    BrokerUnavailable: (503, {"Retry-After": "5"}), StoreBusy: (503, {"Retry-After": "1"}),
    NoModel: (503, {"Retry-After": "30"}), Busy: (503, {"Retry-After": "1"}),
    NoToken: (503, {}), FormatUnavailable: (503, {})}


def _detail(exc: Exception) -> str:
    if isinstance(exc, JobNotFound):
        return f"no job {exc.args[0] if exc.args else ''}".strip()
    if isinstance(exc, BrokerUnavailable):
        return f"{exc}; nothing was queued or changed, try again shortly"
    if isinstance(exc, JobDamaged):
        return f"the job's record is damaged: {exc}"
    if isinstance(exc, Busy):
        return str(exc) or "busy with other requests; retry in a second"
    return str(exc)


async def _handler(request: Request, exc: Exception) -> JSONResponse:
    status, headers = next(v for k, v in _STATUS.items() if isinstance(exc, k))
    if isinstance(exc, DataSourceError) and exc.kind == "missing":
        status = 404
    return JSONResponse({"detail": _detail(exc)}, status_code=status, headers=headers or None)


def install_error_handlers(app: FastAPI) -> None:
    for kind in _STATUS:
        app.add_exception_handler(kind, _handler)
