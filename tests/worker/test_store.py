"""Job records on disk: round trips, damaged files, record and owner locks, idempotency keys."""
from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import time

import pytest

from tests.helpers import tiny_job_config
from worker import lifecycle
from worker.errors import JobConflict, JobDamaged, JobNotFound, StoreBusy
from worker.records import DamagedRecord, JobRecord, JobState, SyntheticData, new_job_id


def make(store, state=JobState.QUEUED) -> JobRecord:
    rec = lifecycle.queue(new_job_id(), tiny_job_config(), SyntheticData(synthetic_images=64))
    return store.create(rec.model_copy(update={"state": state}))


def test_a_record_reads_back_as_it_was_written(store):
    rec = make(store)
    assert store.read(rec.job_id) == rec
    assert json.loads((store.run_dir(rec.job_id) / "job.json").read_text())["state"] == "queued"


@pytest.mark.parametrize("job_id", ["../etc", "20260101-000000-abcdeg", "x", "20260101-000000-abcdef/..", ""])
def test_ids_that_are_not_job_ids_are_never_looked_up(store, job_id):
    with pytest.raises(JobNotFound):
        store.read(job_id)


def test_update_applies_the_transition_and_stamps_the_time(store):
    rec = make(store)
    time.sleep(0.01)
    after = store.update(rec.job_id, lambda r: lifecycle.start(r, "h:1", 3))
    assert after.state is JobState.RUNNING and after.updated_at > rec.updated_at
    assert store.read(rec.job_id) == after


def test_an_update_that_changes_nothing_writes_nothing(store):
    rec = make(store)
    path = store.run_dir(rec.job_id) / "job.json"
    before = path.stat().st_mtime_ns
    assert store.update(rec.job_id, lifecycle.enqueued) == rec
    assert path.stat().st_mtime_ns == before


def test_a_conflict_leaves_the_record_untouched(store):
    rec = make(store, JobState.SUCCEEDED)
    with pytest.raises(JobConflict):
        store.update(rec.job_id, lambda r: lifecycle.start(r, "h:1", 3))
    assert store.read(rec.job_id) == rec


@pytest.mark.parametrize("content,words", [
    (b"null", "invalid job.json"),
    (b"{}", "invalid job.json"),
    (b'{"job_id": "%s", "state": "exploded"}', "state"),
    (b"{\"job_id\": \"%s\", \"state\": \"queued\", \"creat", "invalid job.json"),
    (b"\xff\xfe garbage", "invalid job.json"),
])
def test_a_damaged_record_is_listed_as_damaged_with_the_reason(store, content, words):
    good = make(store)
    bad = make(store)
    if b"%s" in content:
        content = content.replace(b"%s", bad.job_id.encode())
    (store.run_dir(bad.job_id) / "job.json").write_bytes(content)
    listed = {r.job_id: r for r in store.list()}
    assert isinstance(listed[bad.job_id], DamagedRecord) and words in listed[bad.job_id].error
    assert listed[bad.job_id].state is JobState.DAMAGED
    assert listed[good.job_id] == good  # one bad file spoils nothing else
    with pytest.raises(JobDamaged):
        store.read(bad.job_id)
    assert store.count_active() == 1


def test_a_record_missing_its_config_is_damaged(store):
    rec = make(store)
    raw = json.loads((store.run_dir(rec.job_id) / "job.json").read_text())
    del raw["config"]
    (store.run_dir(rec.job_id) / "job.json").write_text(json.dumps(raw))
    with pytest.raises(JobDamaged, match="config"):
        store.read(rec.job_id)


def _hold_lock(path, ready, release):
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    ready.set()
    release.wait(10)


def test_a_record_locked_by_another_process_is_busy_after_a_bounded_wait(store):
    rec = make(store)
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(store.run_dir(rec.job_id) / ".record.lock", ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        t0 = time.monotonic()
        with pytest.raises(StoreBusy, match="another process"):
            store.update(rec.job_id, lifecycle.enqueued)
        assert time.monotonic() - t0 < 2  # lock_wait is 0.3 s in these tests
    finally:
        release.set()
        holder.join(10)
    store.update(rec.job_id, lambda r: lifecycle.fail(r, "x"))  # free again


def test_admission_is_exclusive_across_processes(store):
    """Another process (an app of a second uvicorn worker, say) counting and creating a job holds
    RUNS_DIR/.admission.lock: this one waits for it, and is told busy after its bound."""
    store.root.mkdir(parents=True, exist_ok=True)
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(store.root / ".admission.lock", ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(StoreBusy, match="being started at once"), store.admission(wait=0.3):
            pass
    finally:
        release.set()
        holder.join(10)
    with store.admission(wait=5):  # free again
        pass


def test_the_owner_lock_admits_one_owner_and_is_released_with_it(store):
    rec = make(store)
    lease = store.try_own(rec.job_id)
    assert lease is not None and store.is_owned(rec.job_id)
    assert (store.run_dir(rec.job_id) / ".owner.lock").read_text().strip() == str(os.getpid())
    # flock is per open file: a second open in this very process is a second contender
    assert store.try_own(rec.job_id) is None
    lease.release()
    assert not store.is_owned(rec.job_id)


def test_an_idempotency_key_binds_once_with_the_requests_fingerprint(store):
    assert store.claim_idempotency_key("k", "job-a", "fp-1") is None
    assert store.claim_idempotency_key("k", "job-b", "fp-2") == ("job-a", "fp-1")
    store.release_idempotency_key("k")
    assert store.claim_idempotency_key("k", "job-c", "fp-3") is None


def test_list_is_newest_first_and_empty_without_a_runs_folder(tmp_path):
    from worker.store import JobStore
    assert JobStore(tmp_path / "nothing").list() == []
    store = JobStore(tmp_path / "runs")
    a = make(store)
    time.sleep(1.1)  # ids sort by creation second
    b = make(store)
    assert [r.job_id for r in store.list()] == [b.job_id, a.job_id]


def _unblock_fifo(path) -> None:
    """Open the FIFO's other end (and close it) so that a reader stuck in open() gets EOF."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass  # nobody is waiting on it


def test_a_fifo_or_a_huge_file_in_place_of_a_record_is_damaged_and_never_blocks(store):
    import threading
    good, fifo, huge = make(store), make(store), make(store)
    fifo_path = store.run_dir(fifo.job_id) / "job.json"
    fifo_path.unlink()
    os.mkfifo(fifo_path)  # a reader that opens it blocking waits for a writer that never comes
    with open(store.run_dir(huge.job_id) / "job.json", "r+b") as f:
        f.truncate(1 << 40)  # sparse: 1 TiB that costs nothing on disk
    listed: dict = {}
    reader = threading.Thread(target=lambda: listed.update({r.job_id: r for r in store.list()}), daemon=True)
    reader.start()
    reader.join(30)
    try:
        assert not reader.is_alive(), "listing the jobs hangs on a FIFO job.json"
    finally:
        _unblock_fifo(fifo_path)
    assert listed[good.job_id] == good
    assert isinstance(listed[fifo.job_id], DamagedRecord) and "not a regular file" in listed[fifo.job_id].error
    assert isinstance(listed[huge.job_id], DamagedRecord) and "over 1048576 bytes" in listed[huge.job_id].error
    with pytest.raises(JobDamaged, match="not a regular file"):
        store.read(fifo.job_id)
