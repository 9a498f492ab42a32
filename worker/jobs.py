"""What a client can do to jobs (create, cancel, resume, delete), as the app calls it: the store, the state
machine and the queue put together, with the failure of each step undone. No HTTP here: the
API turns these exceptions into status codes.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable

from worker import lifecycle
from worker.errors import BrokerUnavailable, JobConflict, JobDamaged
from worker.records import ACTIVE, DataSource, JobRecord, JobState, new_job_id
from worker.store import JobStore

Enqueue = Callable[[str], None]
OWN_WAIT_TRIES = 40  # ~2 s


class TooManyJobs(Exception):
    """As many jobs as allowed are queued or running already."""


class IdempotencyKeyReused(Exception):
    """The Idempotency-Key was first used for a different request."""


def _fingerprint(config: dict, data: DataSource) -> str:
    body = json.dumps({"config": config, "data": data.model_dump()}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def _check_room(store: JobStore, max_active: int) -> None:
    if store.count_active() >= max_active:
        raise TooManyJobs(f"{max_active} jobs are already queued or running; wait for one to "
                          "finish or cancel one")


def submit(store: JobStore, config: dict, data: DataSource, enqueue: Enqueue, *, max_active: int,
           idempotency_key: str | None = None) -> tuple[str, bool]:
    """Record a job and send its wake-up message. Returns (job id, created); with a key that was
    used before for the same request, the first job's id and False. Nothing is left behind when
    the queue refuses the message (BrokerUnavailable) or the limit is reached (TooManyJobs)."""
    job_id = new_job_id()
    fingerprint = _fingerprint(config, data)
    if idempotency_key is not None:
        bound = store.claim_idempotency_key(idempotency_key, job_id, fingerprint)
        if bound is not None:
            first_job, first_fingerprint = bound
            if first_fingerprint != fingerprint:
                raise IdempotencyKeyReused(f"this Idempotency-Key was used for a different request "
                                           f"(job {first_job}); use a new key for a new job")
            return first_job, False
    try:
        with store.admission():  # no other job is admitted between the count and the create
            _check_room(store, max_active)
            store.create(lifecycle.queue(job_id, config, data))
        try:
            enqueue(job_id)
        except BaseException:
            store.delete(job_id)  # no orphan record: the job never existed
            raise
    except BaseException:
        if idempotency_key is not None:
            store.release_idempotency_key(idempotency_key)
        raise
    return job_id, True


def cancel(store: JobStore, job_id: str) -> JobRecord:
    """A queued job that nobody trains is cancelled at once; a running one gets the cancel flag
    and stops within a batch, checkpointed."""
    def change(rec: JobRecord) -> JobRecord:
        after = lifecycle.request_cancel(rec, being_trained=store.is_owned(job_id))
        store.request_cancel(job_id)  # also for a cancelled one: a stale message finds the flag
        return after

    return store.update(job_id, change)


def resume(store: JobStore, job_id: str, enqueue: Enqueue, epochs: int | None = None, *,
           max_active: int) -> JobRecord:
    """Queue a cancelled or failed job again from its last checkpoint (or extend a finished one
    to `epochs`). It becomes active again, so it needs room under `max_active` like a new job
    (TooManyJobs); a job that may not resume says so first (JobConflict). If the queue refuses
    the message the job is left as it was."""
    def change(rec: JobRecord) -> JobRecord:
        after = lifecycle.resume(rec, epochs)
        store.clear_cancel(job_id)
        return after

    with store.admission():
        before = store.read(job_id)
        lifecycle.resume(before, epochs)  # JobConflict before TooManyJobs
        _check_room(store, max_active)
        store.update(job_id, change)
    try:
        enqueue(job_id)
    except BrokerUnavailable:
        store.update(job_id, lambda rec: lifecycle.undo_resume(rec, before))
        raise
    return store.update(job_id, lifecycle.enqueued)


def _state(store: JobStore, job_id: str) -> JobState:
    try:
        return store.read(job_id).state
    except JobDamaged:
        return JobState.DAMAGED


def delete(store: JobStore, job_id: str) -> None:
    """Remove a job that nobody is training and that is not waiting to be (cancel it first),
    with all its files. A damaged record can be deleted too."""
    lease = None
    for _ in range(OWN_WAIT_TRIES):  # a trainer that just stopped lets go of the job within moments
        lease = store.try_own(job_id)
        if lease is not None or _state(store, job_id) in ACTIVE:
            break
        time.sleep(0.05)
    if lease is None:
        raise JobConflict(f"job {job_id} is being trained; cancel it before deleting it")
    def keep_an_active_one(record: JobRecord | None) -> None:
        if record is not None and record.state in ACTIVE:  # a resume may have queued it meanwhile
            raise JobConflict(f"job {job_id} is {record.state.value}; cancel it before deleting it")

    try:
        store.delete(job_id, keep=keep_an_active_one)
    finally:
        lease.release()
