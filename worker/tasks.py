"""Celery glue: the `train_job` task, graceful hand-off on shutdown, and the orphan watchdog.
The rules themselves live in worker/runner.py."""
from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time

from celery import signals

from model.fsutil import atomic_write_bytes
from worker.celery_app import TRAIN_TASK, ensure_broker_folders, worker_broker
from worker.runner import recover_orphans, run_job

log = logging.getLogger(__name__)

WATCHDOG_EVERY = 10.0  # seconds between orphan scans / worker heartbeats
_handoff = threading.Event()  # set in a pool process when its worker is shutting down
_broker = worker_broker()
_settings = _broker.settings


@_broker.celery.task(name=TRAIN_TASK)
def train_job(job_id: str) -> None:
    """Train one job to completion, cancellation or hand-off. The job id is all it takes."""
    # billiard resets signal handlers after worker_process_init, so ours goes in per task.
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        outcome = run_job(_settings, job_id, _handoff.is_set, _broker.enqueue)
    finally:
        signal.signal(signal.SIGTERM, previous)
    log.info("job %s: %s %s", job_id, outcome.state, outcome.detail)


@signals.worker_init.connect
def _broker_folders(**_) -> None:
    ensure_broker_folders(_settings)


# -- pool process: SIGTERM means "checkpoint and hand the job back" --------------------------
def _on_sigterm(signum, frame) -> None:
    _handoff.set()  # model.train polls this every batch, checkpoints and returns


@signals.worker_process_init.connect
def _parent_death_is_a_sigterm(**_) -> None:
    # Celery has the kernel SIGKILL a pool process whose main process dies; make that a SIGTERM,
    # so an orphaned job is checkpointed mid-epoch and handed back instead of losing the epoch.
    from billiard.util import set_pdeathsig
    try:
        set_pdeathsig(signal.SIGTERM)
    except OSError:  # not Linux: the next worker's watchdog recovers the job from its checkpoint
        pass


# -- main process: forward shutdown to the pool, scan for orphans, heartbeat ------------------
@signals.worker_shutting_down.connect
def _forward_shutdown(**_) -> None:
    """Celery's warm shutdown would wait hours for a training task; ask it to hand off instead."""
    import billiard.process
    for child in billiard.process.active_children():
        try:
            os.kill(child.pid, signal.SIGTERM)
        except OSError:
            pass


def _heartbeat_path():
    return _settings.heartbeat_dir / f"{os.uname().nodename}-{os.getpid()}.json"


def _watchdog(stop: threading.Event) -> None:
    started = time.time()
    while not stop.is_set():
        # Each part on its own: a full disk that refuses the heartbeat must not stop recovery.
        try:
            atomic_write_bytes(_heartbeat_path(), json.dumps(
                {"pid": os.getpid(), "host": os.uname().nodename, "started_at": started,
                 "seen_at": time.time(), "device": _settings.device}).encode())
        except Exception as exc:
            log.warning("could not write the worker heartbeat: %s", exc)
        try:
            forgot = _broker.forgot_messages()
            if forgot:
                log.warning("the broker holds no marker: it may have lost queued messages; re-sending them")
            sent = recover_orphans(_settings, _broker.enqueue, resend_queued=forgot)
            if sent:
                log.warning("re-queued jobs: %s", ", ".join(sent))
        except Exception:  # the watchdog must outlive a broker or disk hiccup
            log.exception("watchdog pass failed")
        stop.wait(WATCHDOG_EVERY)


_watchdog_stop = threading.Event()


@signals.worker_ready.connect
def _start_watchdog(**_) -> None:
    threading.Thread(target=_watchdog, args=(_watchdog_stop,), name="job-watchdog", daemon=True).start()


@signals.worker_shutdown.connect
def _stop_watchdog(**_) -> None:
    _watchdog_stop.set()
    try:
        _heartbeat_path().unlink()
    except OSError:
        pass
