"""Prometheus metrics of one app process: request latency, image cache, queue and training."""
from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from starlette.types import ASGIApp, Receive, Scope, Send

from worker.jobs import JobStore


class _JobCollector:
    """Read at scrape time from the job records, so every app replica reports the same truth."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def collect(self):
        queued = GaugeMetricFamily("dcgan_jobs", "jobs by state", labels=["state"])
        progress = GaugeMetricFamily("dcgan_training_progress_ratio", "completed epochs / epochs",
                                     labels=["job_id"])
        speed = GaugeMetricFamily("dcgan_training_images_per_second", "training throughput",
                                  labels=["job_id"])
        counts: dict[str, int] = {}
        for rec in self.store.list():
            counts[rec["state"]] = counts.get(rec["state"], 0) + 1
            if rec["state"] == "running":
                progress.add_metric([rec["job_id"]], rec.get("epoch", 0) / max(rec.get("epochs", 1), 1))
                speed.add_metric([rec["job_id"]], rec.get("images_per_sec") or 0.0)
        for state in ("queued", "running", "succeeded", "failed", "cancelled"):
            queued.add_metric([state], counts.get(state, 0))
        yield queued
        yield progress
        yield speed


class Metrics:
    def __init__(self, store: JobStore) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram("dcgan_http_request_duration_seconds", "request latency",
                                 ["method", "route", "status"], registry=self.registry,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
        self.cache_hits = Counter("dcgan_image_cache_hits", "images served from the cache",
                                  registry=self.registry)
        self.cache_misses = Counter("dcgan_image_cache_misses", "images rendered", registry=self.registry)
        self.not_modified = Counter("dcgan_image_not_modified", "304 answers to If-None-Match",
                                    registry=self.registry)
        self.busy = Counter("dcgan_image_busy_rejections", "renders refused with 503 (server busy)",
                            registry=self.registry)
        self.registry.register(_JobCollector(store))


class LatencyMiddleware:
    """Times every request by its route template (not its raw path: bounded label values)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            self.metrics.latency.labels(scope["method"], path, str(status["code"])).observe(
                time.perf_counter() - start)


class BodyLimitMiddleware:
    """413 for a request body over `limit` bytes, whether Content-Length says so up front or a
    chunked body turns out to be too long; the body is never buffered past the limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

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
                    return await _reject(send, self.limit)
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge()
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _reject(send, self.limit)


class _TooLarge(Exception):
    pass


async def _reject(send: Send, limit: int) -> None:
    body = f'{{"detail":"request body over {limit} bytes"}}'.encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
