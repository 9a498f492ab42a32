"""Sending wake-up messages from the API, so that a sick broker can never take the API with it.

The send itself (worker.celery_app.Broker.enqueue) already gives up when the broker refuses or stays
silent past its socket timeout; on top of that every send runs on a small pool of its own with
a hard deadline. A request waits at most `timeout` seconds in all: for a free send slot (a
burst of requests on a healthy broker queues up for the slots, it is not refused), then for its
send. Only when a send has been stuck past the deadline (the broker is not answering) is the
next request told at once, instead of each one tying up a thread the rest of the API needs.
"""
from __future__ import annotations

import functools
import threading
import time
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


class _Send:
    __slots__ = ("started",)

    def __init__(self) -> None:
        self.started = time.monotonic()


class QueueSender:
    def __init__(self, send: Callable[[str], None], timeout: float, concurrency: int = 2) -> None:
        self._send = send
        self.timeout = timeout
        self._free = concurrency
        self._running: set[_Send] = set()
        self._changed = threading.Condition()
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="enqueue")

    def _run(self, job_id: str, send: _Send) -> None:
        try:
            self._send(job_id)
        finally:
            with self._changed:
                self._running.discard(send)
                self._free += 1
                self._changed.notify()

    def _take_slot(self, deadline: float) -> _Send:
        """A send slot, waiting for one until `deadline`; BrokerUnavailable at once when every
        slot is held by a send already past its own deadline (the broker is not answering)."""
        with self._changed:
            while self._free == 0:
                now = time.monotonic()
                oldest = min(s.started for s in self._running)
                if now - oldest >= self.timeout:
                    raise BrokerUnavailable("the job queue is not answering (earlier sends are still waiting on it)")
                if now >= deadline:
                    raise BrokerUnavailable(f"the job queue did not answer within {self.timeout:g} s "
                                            "(every send was still waiting on it)")
                self._changed.wait(min(deadline, oldest + self.timeout) - now)
            self._free -= 1
            send = _Send()
            self._running.add(send)
            return send

    def __call__(self, job_id: str) -> None:
        """Blocking for at most `timeout` seconds; BrokerUnavailable when the message was not
        (or not yet) taken. A send that finishes after its deadline may still deliver the
        message: the worker then finds no job (or a finished one) and drops it."""
        deadline = time.monotonic() + self.timeout
        send = self._take_slot(deadline)
        try:
            future = self._pool.submit(self._run, job_id, send)
        except BaseException:
            self._running.discard(send)
            with self._changed:
                self._free += 1
                self._changed.notify()
            raise
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            raise BrokerUnavailable(f"the job queue did not answer within {self.timeout:g} s") from None
