"""ASGI middleware of the app's own: request bodies bounded in size and in time."""
from __future__ import annotations

import asyncio
import json
import time

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


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
