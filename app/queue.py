"""Putting a job on the training queue, by task name (the app never imports task code)."""
from __future__ import annotations

from worker.celery_app import enqueue as _send


class BrokerUnavailable(Exception):
    """The broker did not take the message; nothing was queued."""


def enqueue(job_id: str) -> None:
    """Blocking: call it from a worker thread, not the event loop."""
    try:
        _send(job_id)
    except Exception as exc:  # kombu raises OperationalError, redis ConnectionError, OSError...
        raise BrokerUnavailable(f"the job queue is not reachable ({type(exc).__name__})") from exc
