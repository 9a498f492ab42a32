"""Prometheus metrics of one app process: request latency, image cache, queue and training."""
from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from starlette.types import ASGIApp, Receive, Scope, Send

from model.progress import job_fields
from worker.records import JobState
from worker.store import JobStore


class _JobCollector:
    """Read at scrape time from the job records, so every app replica reports the same truth."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def collect(self):
        queued = GaugeMetricFamily("dcgan_jobs", "jobs by state", labels=["state"])
        progress = GaugeMetricFamily("dcgan_training_progress_ratio", "completed epochs / epochs",
                                     labels=["job_id"])
        # one gauge per progress field that names a metric (model/progress.py), 0 until reported
        gauges = {f.name: GaugeMetricFamily(*f.metric, labels=["job_id"]) for f in job_fields() if f.metric}
        counts = dict.fromkeys(JobState, 0)
        for rec in self.store.list():
            counts[rec.state] += 1
            if rec.state is JobState.RUNNING:
                progress.add_metric([rec.job_id], rec.epoch / max(rec.epochs, 1))
                for name, gauge in gauges.items():
                    gauge.add_metric([rec.job_id], getattr(rec, name) or 0.0)
        for state, count in counts.items():
            queued.add_metric([state.value], count)
        yield queued
        yield progress
        yield from gauges.values()


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
