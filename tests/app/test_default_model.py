"""The rule for the model /generate serves when no job is named (app/default_model.py), one test
per branch, on real trained jobs whose measured SWD is then set to known values."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from app.registry import ModelRegistry
from tests.app.conftest import AUTH, make_settings, trained_job
from tests.helpers import write_blob_images
from worker import lifecycle
from worker.records import FolderData, new_job_id
from worker.store import JobStore


def set_swd(runs, job_id: str, by_epoch: dict[int, float]) -> None:
    """Give epoch rows of a job's metrics these SWD values (of its sampled, EMA, generator)."""
    path = runs / job_id / "metrics.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    for r in rows:
        if r["kind"] == "epoch" and r["epoch"] in by_epoch:
            r["swd"], r["swd_ema"] = by_epoch[r["epoch"]] + 50, by_epoch[r["epoch"]]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def two_jobs(tmp_path_factory, served_runs, image_folder):
    """Job `a` (the session's 2-epoch job) and job `b` after it, both on the same data."""
    src, a = served_runs
    runs = tmp_path_factory.mktemp("two-jobs") / "runs"
    shutil.copytree(src, runs)
    return runs, a, trained_job(runs, image_folder, epochs=3).job_id


@pytest.fixture
def runs(tmp_path, two_jobs):
    src, a, b = two_jobs
    shutil.copytree(src, tmp_path / "runs")
    return tmp_path / "runs", a, b


def choose(runs):
    reg = ModelRegistry(runs, torch.device("cpu"), check_seconds=0)
    model = reg.get()
    return (model.job_id, model.ref.epoch), reg.describe(model)


def test_the_lowest_swd_on_the_newest_jobs_data_serves_even_from_an_older_job(runs):
    runs, a, b = runs
    set_swd(runs, a, {1: 30.0, 2: 41.0})
    set_swd(runs, b, {1: 60.0, 2: 45.0, 3: 50.0})  # the newer job is worse: it does not take over
    served, info = choose(runs)
    assert served == (a, 1) and info.swd == 30.0 and not info.pinned
    assert info.reason.startswith(f"the lowest SWD (30.0, epoch 1 of job {a}) among the 2 succeeded jobs")
    set_swd(runs, b, {3: 12.5})
    assert choose(runs)[0] == (b, 3)


def test_a_job_on_new_data_takes_over_whatever_its_swd(runs, tmp_path):
    runs, a, b = runs
    set_swd(runs, a, {1: 30.0})
    set_swd(runs, b, {2: 35.0})
    other = write_blob_images(tmp_path / "other", 96, seed=7)
    c = trained_job(runs, other, epochs=2).job_id
    set_swd(runs, c, {1: 90.0, 2: 80.0})
    served, info = choose(runs)
    assert served == (c, 2) and "the 1 succeeded job on" in info.reason


def test_without_an_swd_on_its_data_the_newest_jobs_newest_checkpoint_serves(runs):
    runs, a, b = runs
    served, info = choose(runs)  # tiny jobs measure no SWD
    assert served == (b, 3) and "no SWD was measured" in info.reason and info.swd is None


def test_a_pin_beats_the_rule(runs, tmp_path):
    runs, a, b = runs
    set_swd(runs, b, {3: 1.0})
    from fastapi.testclient import TestClient

    from app.main import create_app
    with TestClient(create_app(make_settings(tmp_path), enqueue=lambda job_id: None)) as c:  # RUNS_DIR: runs
        assert c.get("/models/default").json()["epoch"] == 3
        r = c.post("/models/default", json={"job_id": a, "epoch": 2}, headers=AUTH)
        assert r.status_code == 200
        info = c.get("/models/default").json()
        assert (info["job_id"], info["epoch"], info["pinned"]) == (a, 2, True)
        assert info["reason"] == "pinned with POST /models/default"
        assert c.delete("/models/default", headers=AUTH).status_code == 204
        assert c.get("/models/default").json()["reason"].startswith("the lowest SWD (1.0, epoch 3")


def test_before_any_job_succeeds_the_newest_checkpoint_of_any_job_serves(tmp_path, image_folder):
    runs = tmp_path / "runs"
    from model.train import train
    from tests.helpers import tiny_config
    store = JobStore(runs)
    rec = store.create(lifecycle.queue(new_job_id(), tiny_config().to_dict(), FolderData(data_dir="faces")))
    store.update(rec.job_id, lambda r: lifecycle.start(r, "test:1", 3))
    train(tiny_config(epochs=1), store.run_dir(rec.job_id), data_dir=image_folder)  # still "running"
    served, info = choose(runs)
    assert served == (rec.job_id, 1) and "no job has succeeded yet" in info.reason


def test_a_best_checkpoint_that_does_not_load_gives_way_to_the_jobs_newest(runs):
    runs, a, b = runs
    set_swd(runs, b, {1: 10.0})
    (runs / b / "checkpoints" / "epoch-0001.pt").write_bytes(b"not a checkpoint")
    reg = ModelRegistry(runs, torch.device("cpu"), check_seconds=0)
    model, problems = reg.status()
    assert (model.job_id, model.ref.epoch) == (b, 3) and any("epoch-0001.pt" in p for p in problems)
    assert "did not load" in reg.describe(model).reason


def test_hostile_metrics_and_data_files_do_not_break_the_choice(runs):
    runs, a, b = runs
    set_swd(runs, a, {1: 30.0})
    with open(runs / b / "metrics.jsonl", "a") as f:
        f.write('{"kind": "epoch", "epoch": 2, "swd_ema": "low"}\n{"kind": "epoch", "epoch": true, "swd": 1}\n'
                '{"kind": "epoch", "epoch": 3, "swd_ema": NaN}\n[1, 2]\n')
    assert choose(runs)[0] == (a, 1)
    (runs / b / "data.json").unlink()
    import os
    os.mkfifo(runs / b / "data.json")  # the newest job's data cannot be read: no SWD rule for it
    served, info = choose(runs)
    assert served == (b, 3) and "no SWD was measured" in info.reason
