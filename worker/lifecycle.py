"""A job's life: every transition of its record, each checking the state it starts from.

    queue ──▶ queued ──start──▶ running ──succeed──▶ succeeded ─┐
                ▲  ▲              │ │ │                        │ resume with more epochs
                │  └─hand_back────┘ │ └──fail──▶ failed ───────┤
                │  └─orphaned───────┘   (or orphaned too often)│
                │                 └──cancelled──▶ cancelled ───┤
                └──────────────────────resume──────────────────┘
    request_cancel: queued (nobody training it) ──▶ cancelled; running ──▶ running + cancel_requested

The functions are pure (record in, record out) and raise JobConflict when the starting state
does not allow the transition; JobStore.update applies one under the record's lock. The
messages name states, never HTTP: the API decides what a conflict answers.
"""
from __future__ import annotations

import time

from model.progress import TrainProgress
from worker.errors import JobConflict
from worker.records import ACTIVE, DatasetInfo, DataSource, JobRecord, JobState, now

S = JobState


def _expect(rec: JobRecord, allowed: frozenset[JobState] | set[JobState], doing: str) -> None:
    if rec.state not in allowed:
        names = " or ".join(sorted(s.value for s in allowed))
        raise JobConflict(f"job {rec.job_id} is {rec.state.value}; only {names} jobs can {doing}")


def _set(rec: JobRecord, **fields) -> JobRecord:
    return rec.model_copy(update=fields)


def queue(job_id: str, config: dict, data: DataSource) -> JobRecord:
    """A new job, waiting for a worker."""
    t = now()
    return JobRecord(job_id=job_id, state=S.QUEUED, config=config, data=data, epochs=config["epochs"],
                     created_at=t, updated_at=t)


def orphaned(rec: JobRecord, max_attempts: int) -> JobRecord:
    """A running job whose owner lock is free: its process died. Count it and queue it again
    (its wake-up message must be sent again), or fail it once that has happened max_attempts times."""
    _expect(rec, {S.RUNNING}, "be orphaned")
    crashes = rec.crashes + 1
    if crashes >= max_attempts:
        return _set(rec, state=S.FAILED, crashes=crashes, finished_at=time.time(), needs_enqueue=False,
                    error=f"the worker died {crashes} times while training this job (last owner "
                          f"{rec.worker}); not retried again. Check the worker logs (out of memory?), "
                          "then resume the job.")
    return _set(rec, state=S.QUEUED, crashes=crashes, worker=None, needs_enqueue=True)


def start(rec: JobRecord, worker: str, max_attempts: int) -> JobRecord:
    """The process holding the owner lock takes the job. A record still saying `running` was
    left by a process that died (the lock is ours now): that counts as a crash first."""
    _expect(rec, ACTIVE, "start")
    if rec.state is S.RUNNING:
        rec = orphaned(rec, max_attempts)
        if rec.state is S.FAILED:
            return rec
    return _set(rec, state=S.RUNNING, attempts=rec.attempts + 1, started_at=rec.started_at or time.time(),
                worker=worker, needs_enqueue=False, error=None)


def report(rec: JobRecord, event: TrainProgress) -> JobRecord:
    """Progress from model.train, as the job status shows it."""
    _expect(rec, {S.RUNNING}, "report progress")
    fields = event.for_job()
    if event.warning:
        fields["warning"] = event.warning
    if event.data is not None:  # decoding is over: the data report now, not when the job ends;
        # and no speed or ETA of an earlier attempt until this one has measured its own
        fields.update(dataset=DatasetInfo.model_validate(event.data), images_per_sec=None, eta_seconds=None)
    return _set(rec, **fields)


def succeed(rec: JobRecord, dataset: DatasetInfo) -> JobRecord:
    _expect(rec, {S.RUNNING}, "succeed")
    return _set(rec, state=S.SUCCEEDED, finished_at=time.time(), eta_seconds=0, dataset=dataset,
                worker=None)


def fail(rec: JobRecord, error: str) -> JobRecord:
    _expect(rec, ACTIVE, "fail")
    return _set(rec, state=S.FAILED, error=error, finished_at=time.time(), worker=None, needs_enqueue=False)


def hand_back(rec: JobRecord, dataset: DatasetInfo | None) -> JobRecord:
    """The worker is shutting down: the job (checkpointed) waits for the next worker."""
    _expect(rec, {S.RUNNING}, "be handed back")
    return _set(rec, state=S.QUEUED, worker=None, needs_enqueue=True, dataset=dataset or rec.dataset)


def enqueued(rec: JobRecord) -> JobRecord:
    """Its wake-up message is on the queue (a no-op for a job that moved on meanwhile)."""
    return _set(rec, needs_enqueue=False) if rec.state is S.QUEUED else rec


def request_cancel(rec: JobRecord, being_trained: bool) -> JobRecord:
    """A queued job nobody is training is cancelled at once; otherwise its trainer stops within
    a batch (it watches the cancel flag) and then calls `cancelled`."""
    if rec.state in (S.SUCCEEDED, S.FAILED, S.CANCELLED):
        raise JobConflict(f"job {rec.job_id} is already {rec.state.value}")
    _expect(rec, ACTIVE, "be cancelled")
    if rec.state is S.QUEUED and not being_trained:
        return _set(rec, state=S.CANCELLED, finished_at=time.time(), needs_enqueue=False)
    return _set(rec, cancel_requested=True)


def cancelled(rec: JobRecord, dataset: DatasetInfo | None) -> JobRecord:
    """The trainer saw the cancel flag (or found it before starting) and stopped."""
    _expect(rec, ACTIVE, "be cancelled")
    return _set(rec, state=S.CANCELLED, finished_at=time.time(), worker=None, needs_enqueue=False,
                dataset=dataset or rec.dataset)


def resume(rec: JobRecord, epochs: int | None = None) -> JobRecord:
    """Queue a stopped job again, from its last checkpoint. A cancelled or failed job resumes
    as it was (or extended); a succeeded one only when `epochs` extends it."""
    if epochs is not None and epochs <= rec.epochs:
        raise JobConflict(f"job {rec.job_id} already has {rec.epochs} epochs; to extend it, ask for more")
    allowed = {S.CANCELLED, S.FAILED} | ({S.SUCCEEDED} if epochs is not None else set())
    if rec.state not in allowed:
        raise JobConflict(f"job {rec.job_id} is {rec.state.value}; only cancelled or failed jobs resume "
                          "(a succeeded one when given more epochs)")
    config = {**rec.config, "epochs": epochs} if epochs is not None else rec.config
    return _set(rec, state=S.QUEUED, config=config, epochs=epochs or rec.epochs, error=None, crashes=0,
                cancel_requested=False, finished_at=None, needs_enqueue=True)


def undo_resume(rec: JobRecord, before: JobRecord) -> JobRecord:
    """The wake-up message of a resume could not be sent: put the job back as it was, unless a
    worker has already picked it up."""
    _expect(rec, {S.QUEUED}, "be put back")
    return before
