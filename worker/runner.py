"""Running one job: ownership, state changes, progress, cancel and hand-off around model.train.

The Celery task (worker/tasks.py) is a thin shell over `run_job`; this module knows nothing of
Celery either, so its rules can be read in one place:

- a job is trained only by the process holding its owner lock (worker/jobs.py);
- a job found `running` with nobody holding the lock was orphaned by a dead process: it is
  resumed from its last checkpoint, and failed once that has happened `max_attempts` times;
- cancel -> checkpoint -> `cancelled`; shutdown -> checkpoint -> `queued` again (handed to the
  next worker); an error -> `failed` with a message a person can act on.
"""
from __future__ import annotations

import errno
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from app.settings import Settings
from worker.jobs import TERMINAL, JobConflict, JobNotFound, JobStore

log = logging.getLogger(__name__)

PROGRESS_EVERY = 1.0  # seconds between job.json progress writes (epoch ends are always written)
STOP_POLL_EVERY = 0.2  # seconds between looks at the cancel file
OWN_RETRIES = 40  # a watchdog probe can hold the owner lock for an instant; retry ~2 s


@dataclass
class Outcome:
    state: str  # what the job record says afterwards, or "skipped"
    detail: str = ""


def synthetic_folder(settings: Settings, count: int, seed: int) -> Path:
    """The procedural face dataset a job asked for, written once and shared by later jobs."""
    from model.synth import write_dataset

    folder = settings.synthetic_dir / f"faces-s{seed}-n{count}"
    write_dataset(folder, count, seed=seed)
    return folder


def data_folder(settings: Settings, record: dict[str, Any]) -> Path:
    data = record["data"]
    if data.get("dataset") == "synthetic":
        return synthetic_folder(settings, int(data["synthetic_images"]), int(data.get("synthetic_seed", 0)))
    return (settings.data_root / data["data_dir"]).resolve()


def _orphaned(record: dict[str, Any], max_attempts: int) -> dict[str, Any]:
    """A job marked running whose owner lock is free: its process died. Count it, and give up
    once it has happened `max_attempts` times."""
    crashes = record.get("crashes", 0) + 1
    if crashes >= max_attempts:
        return {"state": "failed", "crashes": crashes, "finished_at": time.time(),
                "error": f"the worker died {crashes} times while training this job "
                         f"(last owner {record.get('worker')}); not retried again. "
                         "Check the worker logs (out of memory?), then POST /jobs/<id>/resume."}
    return {"state": "queued", "crashes": crashes, "worker": None}


def _start(record: dict[str, Any], max_attempts: int) -> dict[str, Any]:
    """Under the record lock, holding the owner lock: may this process start the job now?"""
    if record["state"] in TERMINAL:
        raise JobConflict(f"already {record['state']}")
    changes = _orphaned(record, max_attempts) if record["state"] == "running" else {}
    if changes.get("state") == "failed":
        return changes
    return {**changes, "state": "running", "attempts": record.get("attempts", 0) + 1,
            "started_at": record.get("started_at") or time.time(), "worker": _worker_name(),
            "needs_enqueue": False, "error": None}


def _worker_name() -> str:
    return f"{os.uname().nodename}:{os.getpid()}"


def _failure_message(exc: BaseException) -> str:
    from model.checkpoint import CheckpointError
    from model.config import ConfigError
    from model.data import DataError

    if isinstance(exc, (DataError, ConfigError, CheckpointError)):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return (f"disk full while writing to {exc.filename or 'the run folder'}: the last complete "
                "checkpoint is kept; free some space, then POST /jobs/<id>/resume")
    if type(exc).__name__ == "OutOfMemoryError":
        return "the GPU ran out of memory: start a job with a smaller batch_size, ngf or ndf"
    return f"{type(exc).__name__}: {exc}"


class _Progress:
    """Turns model.train progress callbacks into (throttled) job.json updates."""

    def __init__(self, store: JobStore, job_id: str) -> None:
        self.store, self.job_id = store, job_id
        self.last = 0.0

    def __call__(self, info: dict[str, Any]) -> None:
        phase = info.get("phase")
        fields: dict[str, Any] = {"phase": phase}
        if phase == "warning":
            fields = {"warning": info["message"]}
        elif phase == "data":
            fields.update({k: info[k] for k in ("decoded", "files") if k in info})
        else:
            completed = info["epoch"] if info.get("kind", "epoch") == "epoch" else info["epoch"] - 1
            fields["epoch"] = completed
            for k in ("epochs", "step", "loss_d", "loss_g", "d_x", "d_g_z", "images_per_sec",
                      "eta_seconds", "checkpoint", "swd"):
                if info.get(k) is not None:
                    fields[k] = info[k]
        now = time.monotonic()
        urgent = info.get("kind") == "epoch" or phase in ("warning", "done", "stopped")
        if urgent or now - self.last >= PROGRESS_EVERY:
            self.last = now
            self.store.update(self.job_id, **fields)


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


def run_job(settings: Settings, job_id: str, shutting_down: Callable[[], bool],
            enqueue: Callable[[str], None]) -> Outcome:
    """Train job `job_id` if nobody else is; return what became of it."""
    from model.config import TrainConfig
    from model.train import train

    store = JobStore(settings.runs_dir)
    try:
        record = store.read(job_id)
    except JobNotFound:
        return Outcome("skipped", "no such job (deleted, or never recorded)")
    if record["state"] in TERMINAL:
        return Outcome("skipped", f"already {record['state']}")
    lease = None
    for _ in range(OWN_RETRIES):
        lease = store.try_own(job_id)
        if lease is not None:
            break
        time.sleep(0.05)
    if lease is None:
        return Outcome("skipped", "another worker owns it")
    try:
        try:
            record = store.update(job_id, lambda r: _start(r, settings.max_attempts))
        except JobConflict as exc:
            return Outcome("skipped", str(exc))
        if record["state"] == "failed":
            return Outcome("failed", record["error"])
        if store.cancel_requested(job_id):
            store.update(job_id, state="cancelled", finished_at=time.time())
            return Outcome("cancelled")
        stop = _StopCheck(store, job_id, shutting_down)
        try:
            cfg = TrainConfig.from_dict(record["config"])
            result = train(cfg, store.run_dir(job_id), _Progress(store, job_id), stop,
                           data_dir=data_folder(settings, record), device=settings.device,
                           cache_dir=settings.cache_dir)
        except Exception as exc:  # a job failing must never take the worker down with it
            log.exception("job %s failed", job_id)
            store.update(job_id, state="failed", error=_failure_message(exc), finished_at=time.time())
            return Outcome("failed", _failure_message(exc))
        data = {"dataset": {k: result.data[k] for k in ("images", "files_found", "skipped",
                                                         "skipped_by_reason", "skipped_examples")}}
        if not result.stopped:
            store.update(job_id, state="succeeded", finished_at=time.time(), eta_seconds=0, **data)
            return Outcome("succeeded")
        if stop.reason == "cancel":
            store.update(job_id, state="cancelled", finished_at=time.time(), **data)
            return Outcome("cancelled")
        store.update(job_id, state="queued", needs_enqueue=True, worker=None, **data)
    finally:
        lease.release()
    _enqueue_or_flag(store, job_id, enqueue)
    return Outcome("queued", "handed back for the next worker")


def _enqueue_or_flag(store: JobStore, job_id: str, enqueue: Callable[[str], None]) -> None:
    """Send the job's wake-up message; if the broker is away, leave `needs_enqueue` set for
    the watchdog to send it later."""
    try:
        enqueue(job_id)
    except Exception as exc:
        log.warning("could not re-enqueue %s now (%s); the watchdog will", job_id, exc)
        return
    store.update(job_id, needs_enqueue=False)


def recover_orphans(settings: Settings, enqueue: Callable[[str], None]) -> list[str]:
    """Watchdog pass: jobs marked running that nobody owns (their process died) and queued jobs
    whose message could not be sent are put (back) on the queue. Safe to run anywhere, any
    number of times: a duplicate message is dropped by whoever cannot take the owner lock."""
    store = JobStore(settings.runs_dir)
    sent = []
    for rec in store.list():
        job_id = rec["job_id"]

        def check(r: dict[str, Any]) -> dict[str, Any]:
            if r["state"] == "running" and not store.is_owned(job_id):
                return {**_orphaned(r, settings.max_attempts), "needs_enqueue": True}
            return {}

        try:
            if rec["state"] == "running":
                rec = store.update(job_id, check)
            if rec["state"] == "queued" and rec.get("needs_enqueue"):
                _enqueue_or_flag(store, job_id, enqueue)
                sent.append(job_id)
        except JobNotFound:
            continue
    return sent
