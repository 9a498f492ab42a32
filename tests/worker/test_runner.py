"""run_job and the watchdog pass, in-process: real training of tiny nets, a fake queue."""
from __future__ import annotations

import json

import pytest

from model.progress import TrainProgress
from tests.helpers import tiny_job_config, write_blob_images
from worker import jobs, lifecycle
from worker.records import FolderData, JobState, SyntheticData
from worker.runner import Outcome, _Reporter, recover_orphans, run_job

NEVER = lambda: False  # noqa: E731


@pytest.fixture
def faces(settings):
    write_blob_images(settings.data_root / "faces", 32)
    return FolderData(data_dir="faces")


def submit(store, queue, data, **config) -> str:
    job_id, _ = jobs.submit(store, tiny_job_config(**{"epochs": 2, **config}), data, queue, max_active=10)
    return job_id


def test_a_job_trains_to_succeeded_with_its_progress_and_dataset_recorded(settings, store, queue, faces):
    job_id = submit(store, queue, faces)
    assert run_job(settings, job_id, NEVER, queue) == Outcome("succeeded")
    rec = store.read(job_id)
    assert (rec.state, rec.epoch, rec.step, rec.checkpoint, rec.attempts) == (
        JobState.SUCCEEDED, 2, 4, "epoch-0002.pt", 1)
    assert rec.dataset.images == 32 and rec.loss_d is not None and rec.eta_seconds == 0 and rec.worker is None
    assert not store.is_owned(job_id)


def test_speed_and_eta_count_this_attempts_training_time_only(settings, store, queue, faces):
    """Queued for an hour, decoding for ten minutes: neither is training time. From the event
    that ends decoding on, the speed is the steps done over the time since, and the ETA the
    steps left at that pace; the data report is recorded at once, while the job trains."""
    job_id = submit(store, queue, faces, epochs=10)
    store.update(job_id, lambda r: lifecycle.start(r, "test:1", 3))
    clock = iter([3600.0, 4200.0, 4201.0, 4211.0, 4251.0])
    report = _Reporter(store, job_id, batch_size=16, clock=lambda: next(clock))
    report(TrainProgress("data", 0, 10, decoded=0, files=40))
    report(TrainProgress("data", 0, 10, decoded=40, files=40))  # throttled: within a second of the last
    data = {"images": 32, "files_found": 40, "skipped": 8, "skipped_by_reason": {"not an image": 8},
            "skipped_examples": [[f"junk{i}.txt", "not an image"] for i in range(8)], "fingerprint": "x"}
    report(TrainProgress("train", 0, 10, step=0, batches_per_epoch=2, data=data))
    rec = store.read(job_id)
    assert (rec.phase, rec.dataset.images, rec.dataset.skipped, rec.images_per_sec, rec.eta_seconds) == (
        "train", 32, 8, None, None)
    assert rec.dataset.skipped_examples[0] == ["junk0.txt", "not an image"]
    # 5 steps of 16 images in the 10 s since decoding ended (the meter's own figure is replaced)
    report(TrainProgress("train", 2, 10, step=5, batch=1, batches_per_epoch=2, images_per_sec=999.0,
                         eta_seconds=1.0, epoch_end=True))
    rec = store.read(job_id)
    assert (rec.images_per_sec, rec.eta_seconds) == (8.0, 30.0)  # 15 steps left at 2 s each
    report(TrainProgress("train", 5, 10, step=10, batch=0, batches_per_epoch=2, epoch_end=True))
    rec = store.read(job_id)
    assert (rec.images_per_sec, rec.eta_seconds) == (3.2, 50.0)  # 10 steps in 50 s: a busy spell counts


def test_a_message_for_a_job_someone_else_trains_is_dropped(settings, store, queue, faces):
    job_id = submit(store, queue, faces)
    lease = store.try_own(job_id)
    try:
        assert run_job(settings, job_id, NEVER, queue) == Outcome("skipped", "another worker owns it")
    finally:
        lease.release()
    assert store.read(job_id).state is JobState.QUEUED


@pytest.mark.parametrize("state", [JobState.SUCCEEDED, JobState.CANCELLED])
def test_a_message_for_a_finished_job_is_dropped(settings, store, queue, faces, state):
    job_id = submit(store, queue, faces)
    store.update(job_id, lambda r: r.model_copy(update={"state": state}))
    assert run_job(settings, job_id, NEVER, queue).state == "skipped"


def test_a_message_for_an_unknown_or_damaged_job_is_dropped(settings, store, queue, faces):
    assert run_job(settings, "20260101-000000-abcdef", NEVER, queue).state == "skipped"
    job_id = submit(store, queue, faces)
    (store.run_dir(job_id) / "job.json").write_text("null")
    outcome = run_job(settings, job_id, NEVER, queue)
    assert outcome.state == "skipped" and "damaged" in outcome.detail


def test_the_cancel_flag_stops_training_keeps_a_checkpoint_and_cancels(settings, store, queue, faces):
    job_id = submit(store, queue, faces, epochs=50)
    lease = store.try_own(job_id)  # hold it so cancel only raises the flag, like a running trainer
    jobs.cancel(store, job_id)
    lease.release()
    assert run_job(settings, job_id, NEVER, queue) == Outcome("cancelled")
    assert store.read(job_id).state is JobState.CANCELLED


def test_shutdown_hands_the_job_back_checkpointed_and_sends_its_message(settings, store, queue, faces):
    from model.data import load_dataset
    load_dataset(settings.data_root / "faces", cache_dir=settings.cache_dir)  # decoded: no polls there
    job_id = submit(store, queue, faces, epochs=50)
    polls = []

    def shutting_down():
        polls.append(1)
        return len(polls) > 3

    assert run_job(settings, job_id, shutting_down, queue).state == "queued"
    rec = store.read(job_id)
    assert rec.state is JobState.QUEUED and rec.step == 3 and not rec.needs_enqueue
    assert queue.sent == [job_id, job_id]  # the first from submit, the second the hand-back
    assert list((store.run_dir(job_id) / "checkpoints").glob("epoch-0001-b*.pt"))


def test_a_hand_back_while_the_broker_is_away_leaves_the_message_to_the_watchdog(settings, store, queue, faces):
    job_id = submit(store, queue, faces, epochs=50)
    queue.refuse = True
    run_job(settings, job_id, lambda: True, queue)
    assert store.read(job_id).needs_enqueue
    queue.refuse = False
    assert recover_orphans(settings, queue) == [job_id]
    assert not store.read(job_id).needs_enqueue and queue.sent[-1] == job_id


def test_a_job_that_cannot_train_is_failed_with_a_message(settings, store, queue):
    (settings.data_root / "junk").mkdir()
    (settings.data_root / "junk" / "a.png").write_text("not a png")
    job_id = submit(store, queue, FolderData(data_dir="junk"))
    outcome = run_job(settings, job_id, NEVER, queue)
    rec = store.read(job_id)
    assert outcome.state == "failed" and rec.state is JobState.FAILED
    assert "no usable image" in rec.error and "not an image: 1" in rec.error


def test_the_watchdog_requeues_a_running_job_whose_process_died(settings, store, queue, faces):
    job_id = submit(store, queue, faces)
    store.update(job_id, lambda r: lifecycle.start(r, "gone:1", 3))  # its owner lock is free: dead
    assert recover_orphans(settings, queue) == [job_id]
    rec = store.read(job_id)
    assert (rec.state, rec.crashes, rec.needs_enqueue) == (JobState.QUEUED, 1, False)


def test_the_watchdog_leaves_a_job_whose_trainer_is_alive(settings, store, queue, faces):
    job_id = submit(store, queue, faces)
    store.update(job_id, lambda r: lifecycle.start(r, "me:1", 3))
    lease = store.try_own(job_id)
    try:
        assert recover_orphans(settings, queue) == []
        assert store.read(job_id).state is JobState.RUNNING
    finally:
        lease.release()


def test_one_damaged_or_locked_record_does_not_stop_the_watchdog(settings, store, queue, faces):
    bad = submit(store, queue, faces)
    (store.run_dir(bad) / "job.json").write_text("{}")
    orphan = submit(store, queue, faces)
    store.update(orphan, lambda r: lifecycle.start(r, "gone:1", 3))
    assert recover_orphans(settings, queue) == [orphan]


def test_a_synthetic_job_trains_on_faces_written_under_runs(settings, store, queue):
    job_id = submit(store, queue, SyntheticData(synthetic_images=32), epochs=1)
    assert run_job(settings, job_id, NEVER, queue).state == "succeeded"
    data = json.loads((store.run_dir(job_id) / "data.json").read_text())
    assert data["images"] == 32


def test_after_the_broker_lost_its_messages_every_queued_job_is_sent_again(settings, store, queue, faces):
    waiting = submit(store, queue, faces)
    done = submit(store, queue, faces)
    store.update(done, lambda r: lifecycle.fail(lifecycle.start(r, "h:1", 3), "x"))
    assert recover_orphans(settings, queue) == []  # nothing flagged, nothing sent
    assert recover_orphans(settings, queue, resend_queued=True) == [waiting]
    assert queue.sent[-1] == waiting


def test_a_folder_swapped_for_a_symlink_out_of_data_root_fails_the_job_untrained(settings, store, queue, tmp_path):
    import shutil
    write_blob_images(settings.data_root / "faces", 32)
    job_id = submit(store, queue, FolderData(data_dir="faces"))
    shutil.rmtree(settings.data_root / "faces")
    write_blob_images(tmp_path / "private", 32)
    (settings.data_root / "faces").symlink_to(tmp_path / "private", target_is_directory=True)
    assert run_job(settings, job_id, NEVER, queue).state == "failed"
    assert "outside DATA_ROOT" in store.read(job_id).error
    assert not (store.run_dir(job_id) / "snapshots").exists()


def test_a_stop_during_the_first_decode_hands_the_job_back_untrained(settings, store, queue):
    write_blob_images(settings.data_root / "many", 400)
    job_id = submit(store, queue, FolderData(data_dir="many"))
    assert run_job(settings, job_id, lambda: True, queue).state == "queued"
    rec = store.read(job_id)
    assert rec.state is JobState.QUEUED and rec.step == 0 and rec.dataset is None
