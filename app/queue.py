"""Sending wake-up messages from the API, so that a sick broker can never take the API with it.

The send itself (worker.celery_app.Broker.enqueue) already gives up when the broker refuses or stays
silent past its socket timeout; on top of that every send runs on a small pool of its own with
a hard deadline. A request waits at most `timeout` seconds, and when all sends are stuck the
next request is told at once, instead of each one tying up a thread the rest of the API needs.
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from worker.errors import BrokerUnavailable
from worker.settings import ServiceSettings


def celery_sender(settings: ServiceSettings) -> Callable[[str], None]:
    """The real send, through a Celery app made from `settings` on first use: the app starts
    (and its tests run) without Celery loaded until a job is actually queued."""
    @functools.cache
    def broker():
        from worker.celery_app import Broker

        return Broker(settings)

    return lambda job_id: broker().enqueue(job_id)


class QueueSender:
    def __init__(self, send: Callable[[str], None], timeout: float, concurrency: int = 2) -> None:
        self._send = send
        self.timeout = timeout
        self._slots = threading.BoundedSemaphore(concurrency)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="enqueue")

    def _run(self, job_id: str) -> None:
        try:
            self._send(job_id)
        finally:
            self._slots.release()

    def __call__(self, job_id: str) -> None:
        """Blocking for at most `timeout` seconds; BrokerUnavailable when the message was not
        (or not yet) taken. A send that finishes after its deadline may still deliver the
        message: the worker then finds no job (or a finished one) and drops it."""
        if not self._slots.acquire(blocking=False):
            raise BrokerUnavailable("the job queue is not answering (earlier sends are still waiting on it)")
        future = self._pool.submit(self._run, job_id)
        try:
            future.result(timeout=self.timeout)
        except FutureTimeout:
            raise BrokerUnavailable(f"the job queue did not answer within {self.timeout:g} s") from None
