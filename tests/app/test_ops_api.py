"""Liveness, readiness and metrics routes, in-process."""
from __future__ import annotations

import anyio
import httpx

from app.main import create_app


def test_healthz_answers_while_every_worker_thread_is_taken(settings, queue):
    """Plain `def` routes (every one that touches the disk) run in the thread pool; /healthz must
    not need a thread of it, or routes that are slow would take liveness with them."""
    app = create_app(settings, enqueue=queue)

    async def main() -> httpx.Response:
        limiter = anyio.to_thread.current_default_thread_limiter()
        holders = [object() for _ in range(int(limiter.total_tokens))]
        for holder in holders:
            await limiter.acquire_on_behalf_of(holder)
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as c:
                with anyio.fail_after(20):  # without a free thread it would wait for good
                    return await c.get("/healthz")
        finally:
            for holder in holders:
                limiter.release_on_behalf_of(holder)

    r = anyio.run(main)
    assert r.status_code == 200 and r.json()["status"] == "ok"
