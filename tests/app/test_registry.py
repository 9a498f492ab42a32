"""Which model serves, and how many are held: the registry on its own."""
from __future__ import annotations

import shutil
import threading

import pytest
import torch

from app.registry import Busy, ModelRegistry, NoModel
from tests.app.conftest import trained_job
from worker import lifecycle
from worker.records import JobState
from worker.store import JobStore


@pytest.fixture
def runs(tmp_path, served_runs):
    src, job_id = served_runs
    shutil.copytree(src, tmp_path / "runs")
    return tmp_path / "runs", job_id


def registry(runs_dir, **kw) -> ModelRegistry:
    return ModelRegistry(runs_dir, torch.device("cpu"), check_seconds=0, **kw)


def test_at_most_max_loaded_models_are_held_and_answers_hold_none(runs, image_folder):
    runs_dir, _ = runs
    job = trained_job(runs_dir, image_folder, epochs=5)
    reg = registry(runs_dir, max_loaded=2)
    for epoch in (1, 2, 3, 4, 5, 1, 2):
        assert reg.get(job.job_id, epoch).ref.epoch == epoch
    assert len(reg._loaded) == 2
    assert all(isinstance(a.identity, str) for a in reg._answers.values())


def test_a_damaged_newest_checkpoint_is_skipped_and_reported(runs):
    runs_dir, job_id = runs
    newest = runs_dir / job_id / "checkpoints" / "epoch-0002.pt"
    newest.write_bytes(newest.read_bytes()[:5000])
    loaded, problems = registry(runs_dir).status()
    assert loaded.ref.epoch == 1 and len(problems) == 1 and "epoch-0002.pt" in problems[0]


def test_the_default_is_the_most_recently_succeeded_job_not_a_newer_running_one(runs, image_folder):
    runs_dir, done = runs
    running = trained_job(runs_dir, image_folder, epochs=1)
    store = JobStore(runs_dir)
    store.update(running.job_id, lambda r: r.model_copy(update={"state": JobState.RUNNING}))
    assert registry(runs_dir).get().job_id == done


def test_with_nothing_succeeded_the_newest_checkpoint_of_any_job_serves(runs):
    runs_dir, job_id = runs
    JobStore(runs_dir).update(job_id, lambda r: r.model_copy(update={"state": JobState.RUNNING}))
    assert registry(runs_dir).get().job_id == job_id


def test_no_job_at_all_is_no_model(tmp_path):
    with pytest.raises(NoModel, match="POST /train"):
        registry(tmp_path / "runs").get()


def test_loads_beyond_the_queue_are_refused_as_busy(runs):
    runs_dir, job_id = runs
    reg = registry(runs_dir, load_concurrency=1, load_queue=0)
    entered, release = threading.Event(), threading.Event()
    original = reg._read

    def slow_read(*args):
        entered.set()
        release.wait(10)
        return original(*args)

    reg._read = slow_read
    t = threading.Thread(target=reg.get, args=(job_id, 1))
    t.start()
    try:
        assert entered.wait(10)
        with pytest.raises(Busy):
            reg.get(job_id, 2)
    finally:
        release.set()
        t.join(10)
    assert reg.get(job_id, 2).ref.epoch == 2


def test_pin_protects_the_epoch_from_pruning_and_unpin_releases_it(runs):
    from model.checkpoint import pinned_epochs, prune_checkpoints
    runs_dir, job_id = runs
    reg = registry(runs_dir)
    reg.pin(job_id, 1)
    folder = runs_dir / job_id / "checkpoints"
    assert pinned_epochs(folder) == {1}
    prune_checkpoints(folder, keep_last=1, keep_epochs=())
    assert (folder / "epoch-0001.pt").exists() and reg.get().ref.epoch == 1
    reg.unpin()
    assert pinned_epochs(folder) == set() and reg.pinned() is None and reg.get().ref.epoch == 2


def test_a_failed_pin_leaves_no_protection_behind(runs):
    from app.registry import BadModelRequest
    from model.checkpoint import pinned_epochs
    runs_dir, job_id = runs
    with pytest.raises(BadModelRequest):
        registry(runs_dir).pin(job_id, 9)
    assert pinned_epochs(runs_dir / job_id / "checkpoints") == set()
    with pytest.raises(BadModelRequest):
        registry(runs_dir).pin("20990101-000000-abcdef", 1)
    assert not (runs_dir / "20990101-000000-abcdef").exists()


def test_a_job_that_failed_after_succeeding_once_is_not_the_default(runs, image_folder):
    runs_dir, first = runs
    second = trained_job(runs_dir, image_folder, epochs=1)
    store = JobStore(runs_dir)
    assert registry(runs_dir).get().job_id == second.job_id
    store.update(second.job_id, lambda r: lifecycle.resume(r, epochs=3))
    assert registry(runs_dir).get().job_id == first
