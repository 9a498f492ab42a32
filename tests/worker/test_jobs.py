"""Creating, cancelling and resuming jobs as the API does it, with a fake queue."""
from __future__ import annotations

import pytest

from tests.helpers import tiny_job_config
from worker import jobs, lifecycle
from worker.errors import BrokerUnavailable, JobConflict, JobNotFound
from worker.records import JobState, SyntheticData

DATA = SyntheticData(synthetic_images=64)


def test_submit_records_a_queued_job_and_sends_its_message(store, queue):
    job_id, created = jobs.submit(store, tiny_job_config(), DATA, queue, max_active=5)
    assert created and queue.sent == [job_id]
    rec = store.read(job_id)
    assert rec.state is JobState.QUEUED and rec.data == DATA and not rec.needs_enqueue


def test_submit_leaves_nothing_behind_when_the_queue_refuses(store, queue):
    queue.refuse = True
    with pytest.raises(BrokerUnavailable):
        jobs.submit(store, tiny_job_config(), DATA, queue, max_active=5, idempotency_key="k")
    assert store.list() == []
    queue.refuse = False  # and the key was released with it
    job_id, created = jobs.submit(store, tiny_job_config(), DATA, queue, max_active=5, idempotency_key="k")
    assert created and store.read(job_id)


def test_submit_refuses_more_active_jobs_than_allowed(store, queue):
    for _ in range(2):
        jobs.submit(store, tiny_job_config(), DATA, queue, max_active=2)
    with pytest.raises(jobs.TooManyJobs, match="2 jobs are already queued or running"):
        jobs.submit(store, tiny_job_config(), DATA, queue, max_active=2)
    assert len(store.list()) == 2 and len(queue.sent) == 2


def test_the_same_key_and_body_answer_with_the_first_job(store, queue):
    first, created = jobs.submit(store, tiny_job_config(), DATA, queue, max_active=5, idempotency_key="k")
    again, created_again = jobs.submit(store, tiny_job_config(), DATA, queue, max_active=5, idempotency_key="k")
    assert (again, created, created_again) == (first, True, False) and queue.sent == [first]


def test_the_same_key_with_another_body_is_refused(store, queue):
    first, _ = jobs.submit(store, tiny_job_config(), DATA, queue, max_active=5, idempotency_key="k")
    with pytest.raises(jobs.IdempotencyKeyReused, match=first):
        jobs.submit(store, tiny_job_config(epochs=3), DATA, queue, max_active=5, idempotency_key="k")
    assert len(store.list()) == 1


def test_cancel_of_a_queued_job_nobody_trains_is_immediate_and_leaves_the_flag(store, queue):
    job_id, _ = jobs.submit(store, tiny_job_config(), DATA, queue, max_active=5)
    assert jobs.cancel(store, job_id).state is JobState.CANCELLED
    assert store.cancel_requested(job_id)  # a stale message then finds a cancelled job and the flag
    with pytest.raises(JobConflict, match="already cancelled"):
        jobs.cancel(store, job_id)


def test_cancel_of_a_job_whose_trainer_holds_the_lock_waits_for_the_trainer(store, queue):
    job_id, _ = jobs.submit(store, tiny_job_config(), DATA, queue, max_active=5)
    lease = store.try_own(job_id)
    try:
        rec = jobs.cancel(store, job_id)
        assert rec.state is JobState.QUEUED and rec.cancel_requested and store.cancel_requested(job_id)
    finally:
        lease.release()


def test_resume_queues_again_clears_the_flag_and_sends_the_message(store, queue):
    job_id, _ = jobs.submit(store, tiny_job_config(), DATA, queue, max_active=5)
    jobs.cancel(store, job_id)
    rec = jobs.resume(store, job_id, queue, max_active=5)
    assert rec.state is JobState.QUEUED and not rec.needs_enqueue and not store.cancel_requested(job_id)
    assert queue.sent == [job_id, job_id]


def test_resume_needs_room_under_max_active_like_a_new_job(store, queue):
    stopped, _ = jobs.submit(store, tiny_job_config(), DATA, queue, max_active=2)
    jobs.cancel(store, stopped)
    active = [jobs.submit(store, tiny_job_config(), DATA, queue, max_active=2)[0] for _ in range(2)]
    with pytest.raises(jobs.TooManyJobs, match="2 jobs are already queued or running"):
        jobs.resume(store, stopped, queue, max_active=2)
    assert store.read(stopped).state is JobState.CANCELLED and queue.sent.count(stopped) == 1
    with pytest.raises(JobConflict):  # a job that may not resume says so, whatever the count
        jobs.resume(store, active[0], queue, max_active=2)
    jobs.cancel(store, active[0])
    assert jobs.resume(store, stopped, queue, max_active=2).state is JobState.QUEUED


def test_resume_is_undone_when_the_queue_refuses(store, queue):
    job_id, _ = jobs.submit(store, tiny_job_config(), DATA, queue, max_active=5)
    before = store.update(job_id, lambda r: lifecycle.fail(r, "boom"))
    queue.refuse = True
    with pytest.raises(BrokerUnavailable):
        jobs.resume(store, job_id, queue, max_active=5)
    after = store.read(job_id)
    assert after.state is JobState.FAILED and after.error == "boom"
    assert after.model_dump(exclude={"updated_at"}) == before.model_dump(exclude={"updated_at"})


def test_resume_with_more_epochs_extends_a_succeeded_job(store, queue):
    job_id, _ = jobs.submit(store, tiny_job_config(epochs=2), DATA, queue, max_active=5)
    store.update(job_id, lambda r: r.model_copy(update={"state": JobState.SUCCEEDED}))
    rec = jobs.resume(store, job_id, queue, epochs=5, max_active=5)
    assert rec.state is JobState.QUEUED and rec.epochs == 5 and rec.config["epochs"] == 5


def test_delete_waits_a_moment_for_a_trainer_that_just_stopped(store, queue):
    import threading
    job_id, _ = jobs.submit(store, tiny_job_config(), DATA, queue, max_active=5)
    lease = store.try_own(job_id)
    store.update(job_id, lambda r: lifecycle.cancelled(lifecycle.start(r, "h:1", 3), None))
    threading.Timer(0.3, lease.release).start()  # the trainer lets go just after writing `cancelled`
    jobs.delete(store, job_id)
    assert store.list() == []


def test_delete_refuses_an_active_job(store, queue):
    job_id, _ = jobs.submit(store, tiny_job_config(), DATA, queue, max_active=5)
    with pytest.raises(JobConflict, match="is queued; cancel it before deleting it"):
        jobs.delete(store, job_id)


def test_a_delete_waits_for_a_write_halfway_through_and_no_write_brings_a_job_back(store, queue):
    """A resume's read-modify-write and a delete of the same job: the delete takes the record
    lock, so it comes after the resume (and refuses the job it queued); before, it renamed the
    folder away mid-write and the write made the folder again, holding only job.json."""
    import threading

    from worker.store import JobStore
    store = JobStore(store.root, lock_wait=10)
    job_id, _ = jobs.submit(store, tiny_job_config(), DATA, queue, max_active=5)
    jobs.cancel(store, job_id)
    inside, delete_done = threading.Event(), threading.Event()
    outcome: dict[str, str] = {}

    def resume_slowly(rec):
        inside.set()
        delete_done.wait(1)  # a delete that does not wait for the lock is done by now
        return lifecycle.resume(rec)

    def delete() -> None:
        inside.wait(10)
        try:
            jobs.delete(store, job_id)
            outcome["delete"] = "deleted"
        except JobConflict:
            outcome["delete"] = "refused"
        finally:
            delete_done.set()

    deleter = threading.Thread(target=delete)
    deleter.start()
    store.update(job_id, resume_slowly)
    deleter.join(30)
    assert outcome == {"delete": "refused"}
    assert store.read(job_id).state is JobState.QUEUED


def test_a_write_after_a_delete_is_not_found_and_makes_no_folder(store, queue):
    job_id, _ = jobs.submit(store, tiny_job_config(), DATA, queue, max_active=5)
    record = jobs.cancel(store, job_id)
    jobs.delete(store, job_id)
    with pytest.raises(JobNotFound):
        store._write(record)
    with pytest.raises(JobNotFound):
        store.request_cancel(job_id)
    assert not store.run_dir(job_id).exists()
