"""Running one job, and the watchdog pass that recovers jobs whose worker died.

Orchestration only: the rules of a job's life are the transitions in worker/lifecycle.py, the
records and locks are worker/store.py, the training is model.train. This module knows nothing of
Celery either (worker/tasks.py is a thin shell over it):

- a job is trained only by the process holding its owner lock;
- a job found `running` with nobody holding the lock was orphaned by a dead process: it is
  resumed from its last checkpoint, and failed once that has happened `max_attempts` times;
- cancel -> checkpoint -> `cancelled`; shutdown -> checkpoint -> `queued` again (handed to the
  next worker); an error -> `failed` with a message a person can act on.
"""
from __future__ import annotations

import dataclasses
import errno
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from model.progress import TrainProgress
from worker import lifecycle
from worker.datasource import training_folder
from worker.errors import JobConflict, JobDamaged, JobNotFound, StoreBusy
from worker.records import TERMINAL, DamagedRecord, DatasetInfo, JobState
from worker.settings import ServiceSettings
from worker.store import JobStore

log = logging.getLogger(__name__)

PROGRESS_EVERY = 1.0  # seconds between job.json progress writes (epoch ends are always written)
STOP_POLL_EVERY = 0.2  # seconds between looks at the cancel file
OWN_RETRIES = 40  # a watchdog probe can hold the owner lock for an instant; retry ~2 s


@dataclass
class Outcome:
    state: str  # what the job record says afterwards, or "skipped"
    detail: str = ""


def worker_name() -> str:
    return f"{os.uname().nodename}:{os.getpid()}"


def failure_message(exc: BaseException) -> str:
    """What a person reads in the job's `error`: the cause and what to do about it."""
    from model.checkpoint import CheckpointError
    from model.config import ConfigError
    from model.data import DataError

    if isinstance(exc, (DataError, ConfigError, CheckpointError)):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return (f"disk full while writing to {exc.filename or 'the run folder'}: the last complete "
                "checkpoint is kept; free some space, then resume the job")
    if type(exc).__name__ == "OutOfMemoryError":
        return "the GPU ran out of memory: start a job with a smaller batch_size, ngf or ndf"
    return f"{type(exc).__name__}: {exc}"


class _Reporter:
    """model.train's progress events -> job.json, at most every PROGRESS_EVERY seconds (epoch
    ends, warnings, the data report and the finish always).

    Speed and ETA are this attempt's training time only: counted from the event that ends the
    decoding (never the time the job queued or decoded), averaged over every step since, so one
    busy minute on a shared CPU does not swing the ETA. The epoch ends' snapshots, SWD and
    checkpoints are in that time, as they will be in the time left."""

    def __init__(self, store: JobStore, job_id: str, batch_size: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self.job_id, self.batch_size, self.clock = store, job_id, batch_size, clock
        self.last = float("-inf")
        self.train_start: tuple[float, int] | None = None  # (clock, step) when training began

    def timed(self, event: TrainProgress, now: float) -> TrainProgress:
        if event.data is not None:
            self.train_start = (now, event.step)
        if event.phase != "train" or self.train_start is None:
            return event
        began, first_step = self.train_start
        steps, seconds = event.step - first_step, now - began
        if steps <= 0 or seconds <= 0:
            return dataclasses.replace(event, images_per_sec=None, eta_seconds=None)
        steps_left = max(event.epochs * event.batches_per_epoch - event.step, 0)
        return dataclasses.replace(event, images_per_sec=round(steps * self.batch_size / seconds, 1),
                                   eta_seconds=round(steps_left * seconds / steps, 1))

    def __call__(self, event: TrainProgress) -> None:
        now = self.clock()
        event = self.timed(event, now)
        urgent = (event.epoch_end or event.warning is not None or event.data is not None
                  or event.phase in ("done", "stopped"))
        if urgent or now - self.last >= PROGRESS_EVERY:
            self.last = now
            self.store.update(self.job_id, lambda rec: lifecycle.report(rec, event))


class _StopCheck:
    """should_stop for model.train: the cancel file, or this worker shutting down."""

    def __init__(self, store: JobStore, job_id: str, shutting_down: Callable[[], bool]) -> None:
        self.store, self.job_id, self.shutting_down = store, job_id, shutting_down
        self.next_look = 0.0
        self.reason = ""

    def __call__(self) -> bool:
        if self.shutting_down():
            self.reason = "handoff"
        else:
            now = time.monotonic()
            if now >= self.next_look:
                self.next_look = now + STOP_POLL_EVERY
                if self.store.cancel_requested(self.job_id):
                    self.reason = "cancel"
        return bool(self.reason)


def _own(store: JobStore, job_id: str):
    for _ in range(OWN_RETRIES):
        lease = store.try_own(job_id)
        if lease is not None:
            return lease
        time.sleep(0.05)
    return None


def run_job(settings: ServiceSettings, job_id: str, shutting_down: Callable[[], bool],
            enqueue: Callable[[str], None]) -> Outcome:
    """Train job `job_id` if nobody else is; return what became of it."""
    from model.train import train

    store = JobStore(settings.runs_dir)
    try:
        record = store.read(job_id)
    except JobNotFound:
        return Outcome("skipped", "no such job (deleted, or never recorded)")
    except JobDamaged as exc:
        return Outcome("skipped", f"damaged record: {exc}")
    if record.state in TERMINAL:
        return Outcome("skipped", f"already {record.state.value}")
    lease = _own(store, job_id)
    if lease is None:
        return Outcome("skipped", "another worker owns it")
    try:
        try:
            record = store.update(job_id, lambda rec: lifecycle.start(rec, worker_name(), settings.max_attempts))
        except JobConflict as exc:
            return Outcome("skipped", str(exc))
        if record.state is JobState.FAILED:
            return Outcome("failed", record.error or "")
        if store.cancel_requested(job_id):
            store.update(job_id, lambda rec: lifecycle.cancelled(rec, None))
            return Outcome("cancelled")
        stop = _StopCheck(store, job_id, shutting_down)
        try:
            cfg = record.train_config()
            result = train(cfg, store.run_dir(job_id), _Reporter(store, job_id, cfg.batch_size), stop,
                           data_dir=training_folder(settings, record.data), device=settings.device,
                           cache_dir=settings.cache_dir)
        except Exception as exc:  # a job failing must never take the worker down with it
            log.exception("job %s failed", job_id)
            message = failure_message(exc)
            store.update(job_id, lambda rec: lifecycle.fail(rec, message))
            return Outcome("failed", message)
        dataset = DatasetInfo.model_validate(result.data) if result.data is not None else None
        if not result.stopped:
            store.update(job_id, lambda rec: lifecycle.succeed(rec, dataset))
            return Outcome("succeeded")
        if stop.reason == "cancel":
            store.update(job_id, lambda rec: lifecycle.cancelled(rec, dataset))
            return Outcome("cancelled")
        store.update(job_id, lambda rec: lifecycle.hand_back(rec, dataset))
    finally:
        lease.release()
    send_or_flag(store, job_id, enqueue)
    return Outcome("queued", "handed back for the next worker")


def send_or_flag(store: JobStore, job_id: str, enqueue: Callable[[str], None]) -> None:
    """Send a queued job's wake-up message; if the broker is away, its `needs_enqueue` stays
    set and the watchdog sends it later."""
    try:
        enqueue(job_id)
    except Exception as exc:
        log.warning("could not enqueue %s now (%s); the watchdog will", job_id, exc)
        return
    store.update(job_id, lifecycle.enqueued)


def recover_orphans(settings: ServiceSettings, enqueue: Callable[[str], None], resend_queued: bool = False
                    ) -> list[str]:
    """Watchdog pass: jobs marked running that nobody owns (their process died) and queued jobs
    whose message may not be on the queue are sent (again); with `resend_queued` (the broker
    lost its messages) every queued job is. Safe to run anywhere, any number of times: a
    duplicate message is dropped by whoever cannot take the owner lock, or finds the job done.
    One job that cannot be handled (damaged, locked, a full disk) never stops the pass."""
    store = JobStore(settings.runs_dir)
    sent = []
    for rec in store.list():
        if isinstance(rec, DamagedRecord):
            continue
        job_id = rec.job_id

        def check(r, job_id=job_id):
            if r.state is JobState.RUNNING and not store.is_owned(job_id):
                return lifecycle.orphaned(r, settings.max_attempts)
            return r

        try:
            if rec.state is JobState.RUNNING:
                rec = store.update(job_id, check)
            if rec.state is JobState.QUEUED and (rec.needs_enqueue or resend_queued):
                send_or_flag(store, job_id, enqueue)
                sent.append(job_id)
        except (JobNotFound, JobDamaged, JobConflict, StoreBusy, OSError) as exc:
            log.warning("watchdog: skipped job %s this pass (%s)", job_id, exc)
    return sent
