"""The job state machine: each transition from each state it allows, and a conflict otherwise."""
from __future__ import annotations

import pytest

from model.progress import TrainProgress
from tests.helpers import tiny_job_config
from worker import lifecycle
from worker.errors import JobConflict
from worker.records import DatasetInfo, JobRecord, JobState, SyntheticData

S = JobState
JOB = "20260101-000000-abcdef"
DATASET = DatasetInfo(images=64, files_found=64, skipped=0, skipped_by_reason={})


def record(state: JobState = S.QUEUED, **fields) -> JobRecord:
    rec = lifecycle.queue(JOB, tiny_job_config(epochs=4), SyntheticData(synthetic_images=64))
    return rec.model_copy(update={"state": state, **fields})


def test_queue_makes_a_queued_record_that_will_reach_the_configs_epochs():
    rec = record()
    assert rec.state is S.QUEUED and rec.epochs == 4 and rec.attempts == 0 and rec.crashes == 0
    assert rec.train_config().epochs == 4


def test_start_takes_a_queued_job_counts_the_attempt_and_names_the_worker():
    rec = lifecycle.start(record(needs_enqueue=True), "host:1", max_attempts=3)
    assert (rec.state, rec.attempts, rec.worker, rec.needs_enqueue) == (S.RUNNING, 1, "host:1", False)
    assert rec.started_at is not None


def test_start_of_a_record_still_running_counts_the_dead_owner_as_a_crash():
    rec = lifecycle.start(record(S.RUNNING, attempts=1, worker="host:1"), "host:2", max_attempts=3)
    assert (rec.state, rec.attempts, rec.crashes, rec.worker) == (S.RUNNING, 2, 1, "host:2")


def test_the_last_allowed_crash_fails_the_job_with_the_reason():
    rec = lifecycle.start(record(S.RUNNING, crashes=2, worker="host:1"), "host:2", max_attempts=3)
    assert rec.state is S.FAILED and rec.crashes == 3
    assert "died 3 times" in rec.error and "host:1" in rec.error


@pytest.mark.parametrize("state", [S.SUCCEEDED, S.FAILED, S.CANCELLED])
def test_finished_jobs_cannot_start(state):
    with pytest.raises(JobConflict, match=f"is {state.value}"):
        lifecycle.start(record(state), "host:1", max_attempts=3)


def test_report_takes_epochs_done_and_losses_from_the_event_as_is():
    event = TrainProgress("train", 2, 4, step=12, batch=0, batches_per_epoch=6, epoch_end=True, loss_d=0.5,
                          loss_g=2.0, d_x=0.8, d_g_z=0.2, images_per_sec=100.0, eta_seconds=3.0,
                          checkpoint="epoch-0002.pt", swd=123.4, copy_rate=0.125)
    rec = lifecycle.report(record(S.RUNNING), event)
    assert (rec.epoch, rec.step, rec.checkpoint, rec.swd, rec.loss_g) == (2, 12, "epoch-0002.pt", 123.4, 2.0)
    assert rec.copy_rate == 0.125
    # an interval report mid-epoch keeps the values it does not carry
    later = lifecycle.report(rec, TrainProgress("train", 2, 4, step=14, batch=2, loss_d=0.4))
    assert (later.epoch, later.step, later.loss_d, later.checkpoint, later.swd) == (2, 14, 0.4, "epoch-0002.pt", 123.4)


def test_report_of_decoding_sets_only_the_decode_count():
    rec = lifecycle.report(record(S.RUNNING), TrainProgress("data", 0, 4, decoded=10, files=40))
    assert (rec.phase, rec.decoded, rec.files, rec.epoch) == ("data", 10, 40, 0)


def test_the_report_that_ends_decoding_records_the_data_and_forgets_the_last_attempts_speed():
    old = record(S.RUNNING, images_per_sec=500.0, eta_seconds=60.0, epoch=2, step=8)
    data = {**DATASET.model_dump(), "images": 60, "files_found": 62, "skipped": 2,
            "skipped_by_reason": {"too small": 2}, "skipped_examples": [["a.png", "too small"], ["b.png", "too small"]]}
    rec = lifecycle.report(old, TrainProgress("train", 2, 4, step=8, batches_per_epoch=4, data=data))
    assert (rec.state, rec.phase, rec.epoch, rec.images_per_sec, rec.eta_seconds) == (S.RUNNING, "train", 2, None, None)
    assert rec.dataset.skipped_examples == [["a.png", "too small"], ["b.png", "too small"]]


def test_report_keeps_a_warning():
    rec = lifecycle.report(record(S.RUNNING), TrainProgress("data", 0, 4, warning="ignored damaged x"))
    assert rec.warning == "ignored damaged x"


@pytest.mark.parametrize("transition", [
    lambda r: lifecycle.report(r, TrainProgress("train", 1, 4)),
    lambda r: lifecycle.succeed(r, DATASET),
    lambda r: lifecycle.hand_back(r, None),
    lambda r: lifecycle.orphaned(r, 3),
], ids=["report", "succeed", "hand_back", "orphaned"])
def test_transitions_of_a_running_job_refuse_a_queued_one(transition):
    with pytest.raises(JobConflict, match="is queued"):
        transition(record(S.QUEUED))


def test_succeed_records_the_dataset_and_a_zero_eta():
    rec = lifecycle.succeed(record(S.RUNNING, worker="h:1", eta_seconds=9.0), DATASET)
    assert (rec.state, rec.eta_seconds, rec.worker, rec.dataset.images) == (S.SUCCEEDED, 0, None, 64)
    assert rec.finished_at is not None


def test_hand_back_queues_the_job_again_and_flags_its_message_as_unsent():
    rec = lifecycle.hand_back(record(S.RUNNING, worker="h:1"), DATASET)
    assert (rec.state, rec.worker, rec.needs_enqueue) == (S.QUEUED, None, True)


def test_an_orphaned_job_is_queued_with_its_message_to_send():
    rec = lifecycle.orphaned(record(S.RUNNING, worker="h:1"), max_attempts=3)
    assert (rec.state, rec.crashes, rec.needs_enqueue) == (S.QUEUED, 1, True)


def test_enqueued_clears_the_flag_of_a_queued_job_and_leaves_others_alone():
    assert lifecycle.enqueued(record(needs_enqueue=True)).needs_enqueue is False
    running = record(S.RUNNING, needs_enqueue=True)
    assert lifecycle.enqueued(running) == running


def test_cancel_of_a_queued_job_nobody_trains_is_immediate():
    rec = lifecycle.request_cancel(record(needs_enqueue=True), being_trained=False)
    assert rec.state is S.CANCELLED and rec.finished_at is not None and not rec.needs_enqueue


@pytest.mark.parametrize("state", [S.QUEUED, S.RUNNING])
def test_cancel_of_a_job_being_trained_only_asks_its_trainer(state):
    rec = lifecycle.request_cancel(record(state), being_trained=True)
    assert rec.state is state and rec.cancel_requested


@pytest.mark.parametrize("state", [S.SUCCEEDED, S.FAILED, S.CANCELLED])
def test_cancel_of_a_finished_job_is_a_conflict(state):
    with pytest.raises(JobConflict, match=f"already {state.value}"):
        lifecycle.request_cancel(record(state), being_trained=False)


@pytest.mark.parametrize("state", [S.CANCELLED, S.FAILED])
def test_resume_queues_a_stopped_job_again_with_a_clean_slate(state):
    rec = lifecycle.resume(record(state, error="boom", crashes=2, cancel_requested=True, finished_at=1.0))
    assert (rec.state, rec.error, rec.crashes, rec.cancel_requested) == (S.QUEUED, None, 0, False)
    assert rec.finished_at is None
    assert rec.needs_enqueue and rec.epochs == 4


def test_resume_extends_a_succeeded_job_only_with_more_epochs():
    with pytest.raises(JobConflict, match="only cancelled or failed"):
        lifecycle.resume(record(S.SUCCEEDED))
    rec = lifecycle.resume(record(S.SUCCEEDED), epochs=9)
    assert rec.state is S.QUEUED and rec.epochs == 9 and rec.train_config().epochs == 9
    with pytest.raises(JobConflict, match="already has 4 epochs"):
        lifecycle.resume(record(S.CANCELLED), epochs=4)


@pytest.mark.parametrize("state", [S.QUEUED, S.RUNNING])
def test_active_jobs_do_not_resume(state):
    with pytest.raises(JobConflict, match=f"is {state.value}"):
        lifecycle.resume(record(state))


def test_undo_resume_puts_back_the_record_unless_a_worker_took_it():
    before = record(S.CANCELLED)
    assert lifecycle.undo_resume(lifecycle.resume(before), before) == before
    with pytest.raises(JobConflict):
        lifecycle.undo_resume(record(S.RUNNING), before)


def test_fail_keeps_the_message():
    rec = lifecycle.fail(record(S.RUNNING, worker="h:1"), "disk full")
    assert (rec.state, rec.error, rec.worker) == (S.FAILED, "disk full", None)
