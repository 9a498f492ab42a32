"""The error answers routes can give, for the OpenAPI schema (every 4xx/5xx is documented)."""
from __future__ import annotations

from typing import Any

from app.schemas import Problem


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
