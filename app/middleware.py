"""ASGI middleware of the app's own: request bodies bounded in size and in time, and JSON
bodies held to JSON's numbers."""
from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status, self.detail = status, detail


class BodyLimitMiddleware:
    """413 for a request body over `limit` bytes, whether Content-Length says so up front or a
    chunked body turns out to be too long; 408 for a body that has not fully arrived `timeout`
    seconds after the request began (a client trickling bytes must not hold a connection and its
    buffers for good). The body is never buffered past the limit.

    The route may catch the error while it reads the body and try to answer something else
    (FastAPI calls any failure to read a body a 400); that answer is replaced by ours.
    """

    def __init__(self, app: ASGIApp, limit: int, timeout: float) -> None:
        self.app, self.limit, self.timeout = app, limit, timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    return await _answer(send, 413, f"request body over {self.limit} bytes")
        deadline = time.monotonic() + self.timeout
        received = 0
        refused: _Refused | None = None
        answered = False  # a response (ours or the app's) has started
        body_done = False  # the whole body has arrived

        async def limited_receive() -> Message:
            nonlocal received, refused, body_done
            if refused is not None:
                raise refused
            if body_done:  # all that can come now is the client leaving: a streamed answer waits
                return await receive()  # for that as long as it streams, past the body deadline
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.001))
            except asyncio.TimeoutError:
                refused = _Refused(408, f"request body not received within {self.timeout:g} s")
                raise refused from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    refused = _Refused(413, f"request body over {self.limit} bytes")
                    raise refused
                body_done = not message.get("more_body", False)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal answered
            if refused is not None:  # the app's own answer to a body we refused: ours instead
                if message["type"] == "http.response.start" and not answered:
                    answered = True
                    await _answer(send, refused.status, refused.detail)
                return
            if message["type"] == "http.response.start":
                answered = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _Refused as exc:
            if not answered:
                await _answer(send, exc.status, exc.detail)


async def _answer(send: Send, status: int, detail: Any, close: bool = True) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status,
                "headers": headers + [(b"connection", b"close")] if close else headers})
    await send({"type": "http.response.body", "body": body})


class _NonFinite:
    """Where a JSON body had a number that is no float: its text as the client wrote it."""

    def __init__(self, text: str) -> None:
        self.text = text


def non_finite_numbers(body: bytes) -> list[tuple[tuple[str | int, ...], str]] | None:
    """(path, text) of each number in a JSON body that JSON (RFC 8259) does not have: the NaN,
    Infinity and -Infinity that Python's json reads, and literals past a float's range (1e999).
    None when the body is not JSON at all (the route's own decoding says what is wrong)."""
    found: list[_NonFinite] = []

    def constant(text: str) -> _NonFinite:
        found.append(_NonFinite(text))
        return found[-1]

    def number(text: str) -> float | _NonFinite:
        value = float(text)
        return value if math.isfinite(value) else constant(text)

    try:
        doc = json.loads(body, parse_constant=constant, parse_float=number)
    except (ValueError, RecursionError):
        return None
    if not found:
        return []
    out: list[tuple[tuple[str | int, ...], str]] = []
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), doc)]
    while stack:  # not recursive: the nesting json.loads accepted may be deeper than our stack
        path, value = stack.pop()
        if isinstance(value, _NonFinite):
            out.append((path, value.text))
        elif isinstance(value, dict):
            stack.extend(((*path, k), v) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(value))))
    return out


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            kind = value.decode("latin-1").split(";")[0].strip().lower()
            return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))
    return False


class FiniteNumbersMiddleware:
    """422 naming each field of a JSON request body that holds NaN, Infinity, -Infinity or a
    number too large for a float, before any route sees the body. Python's json (and so
    FastAPI) reads those literals as floats; a bound check then fails on them and the 422 that
    quotes the input cannot be written as JSON: a 500. One check here covers every field of
    every body, present and future, whatever its type."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH") or not _is_json(scope):
            return await self.app(scope, receive, send)
        parts: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left before its body was in
                return await self.app(scope, _replay(message, receive), send)
            parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(parts)
        bad = non_finite_numbers(body)
        if bad:
            detail = [{"type": "finite_number", "loc": ["body", *path], "input": text,
                       "msg": f"Input should be a finite number ({text} is not one in JSON)"} for path, text in bad]
            return await _answer(send, 422, detail, close=False)
        await self.app(scope, _replay({"type": "http.request", "body": body, "more_body": False}, receive), send)


def _replay(first: Message, receive: Receive) -> Receive:
    """`receive` that hands out `first` once, then whatever the client sends next."""
    pending = [first]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()
    return replay


# The gallery loads its own script, stylesheet and images, and shows generated faces as blob:
# URLs; it has no inline script or style. Everything else the app serves (JSON, PNG, the static
# files) is never a document, so it may load nothing. No page of ours may be framed.
GALLERY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                  "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                  "frame-ancestors 'none'")
RESOURCE_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"
_OWN_POLICY = ("/docs", "/redoc")  # Swagger UI and ReDoc pages carry inline scripts of their own


class SecurityHeadersMiddleware:
    """Content-Security-Policy, X-Content-Type-Options: nosniff and X-Frame-Options: DENY on
    every answer (errors included), so that a served file is never sniffed into a script and
    the gallery's buttons cannot be framed for clickjacking."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):] or "/"
        policy = GALLERY_POLICY if path == "/" else None if path in _OWN_POLICY else RESOURCE_POLICY
        extra = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY")]
        if policy is not None:
            extra.append((b"content-security-policy", policy.encode()))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []),
                                                   *(h for h in extra if h[0] not in present)]}
            await send(message)

        await self.app(scope, receive, with_headers)
