"""A job's life through the real API: queued -> running -> succeeded, cancel, resume."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.helpers import write_blob_images
from tests.service.stack import AUTH, TINY_JOB, client, submit, wait_for, wait_job

pytestmark = pytest.mark.slow


def test_a_tiny_job_trains_to_succeeded_and_progress_moves(stack):
    c = client(stack.apps[0][1])
    job_id = submit(c, epochs=3, snapshot_epochs=[1, 3])
    seen_epochs = set()

    def progressed():
        job = c.get(f"/jobs/{job_id}").json()
        seen_epochs.add(job["epoch"])
        return job if job["state"] == "succeeded" else None

    job = wait_for(progressed, 180, "the job to succeed", interval=0.05)
    assert len(seen_epochs) >= 2  # observed at least one intermediate epoch count
    assert job["epoch"] == 3 and job["epochs"] == 3 and job["step"] == 12
    assert job["snapshots"] == [1, 3] and job["checkpoint"] == "epoch-0003.pt"
    assert job["loss_d"] is not None and job["images_per_sec"] > 0 and job["eta_seconds"] == 0
    assert job["dataset"]["images"] == 64 and job["dataset"]["skipped"] == 0
    png = c.get(f"/jobs/{job_id}/snapshots/3.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size == (786, 786)
    series = c.get(f"/jobs/{job_id}/metrics").json()
    assert series["epochs"] == [1, 2, 3] and len(series["steps"]) == 12
    listed = c.get("/jobs").json()["jobs"]
    assert job_id in [j["job_id"] for j in listed]


def test_cancel_stops_within_a_batch_keeps_a_checkpoint_and_resume_finishes(stack):
    c = client(stack.apps[0][1])
    job_id = submit(c, epochs=400, snapshot_epochs=[1])
    wait_for(lambda: c.get(f"/jobs/{job_id}").json()["epoch"] >= 1, 120, "epoch 1")
    r = c.post(f"/jobs/{job_id}/cancel", headers=AUTH)
    assert r.status_code == 202
    job = wait_job(c, job_id, {"cancelled"}, timeout=30)
    ckpts = sorted(p.name for p in (stack.runs / job_id / "checkpoints").iterdir())
    assert ckpts, "a checkpoint is kept"
    assert c.post(f"/jobs/{job_id}/cancel", headers=AUTH).status_code == 409
    stopped_at = job["step"]

    # extend is not the point here: resume it and cancel again, proving it continued, not restarted
    assert c.post(f"/jobs/{job_id}/resume", headers=AUTH).status_code == 202
    wait_for(lambda: c.get(f"/jobs/{job_id}").json()["step"] > stopped_at + 4, 120, "training to continue")
    c.post(f"/jobs/{job_id}/cancel", headers=AUTH)
    job = wait_job(c, job_id, {"cancelled"}, timeout=30)
    assert job["step"] > stopped_at and job["attempts"] == 2


def test_resume_is_refused_for_running_and_finished_jobs(stack):
    c = client(stack.apps[0][1])
    job_id = submit(c)
    wait_job(c, job_id, {"succeeded"})
    r = c.post(f"/jobs/{job_id}/resume", headers=AUTH)
    assert r.status_code == 409 and "only cancelled or failed" in r.json()["detail"]


def test_a_bad_data_folder_fails_the_job_with_a_message(stack):
    (stack.data / "empty-ish").mkdir()
    (stack.data / "empty-ish" / "a.png").write_text("not a png")
    c = client(stack.apps[0][1])
    r = c.post("/train", json={"data_dir": "empty-ish", "epochs": 1}, headers=AUTH)
    assert r.status_code == 202
    job = wait_job(c, r.json()["job_id"], {"failed"})
    assert "no usable image" in job["error"] and "not an image: 1" in job["error"]


def test_the_data_report_is_in_the_status_while_the_job_still_trains(stack):
    """Decoding over, the job's status names what was used and each skipped file with its reason
    (the first 20, and the count) while it trains, not only once it has finished."""
    folder = write_blob_images(stack.data / "mixed", 48)
    for i in range(23):
        (folder / "class0" / f"broken{i:02d}.png").write_bytes(b"not a png at all")
    Image.new("RGB", (4, 4)).save(folder / "class0" / "tiny.png")  # under MIN_SIDE
    c = client(stack.apps[0][1])
    body = {k: v for k, v in TINY_JOB.items() if k not in ("dataset", "synthetic_images")}
    r = c.post("/train", json={**body, "data_dir": "mixed", "epochs": 5000, "snapshot_epochs": [5000]},
               headers=AUTH)
    assert r.status_code == 202, r.text
    answer = r.json()
    assert (answer["images"], answer["steps_per_epoch"], answer["steps"], answer["exact"]) == (72, 4, 20000, False)
    job_id = answer["job_id"]
    try:
        job = wait_for(lambda: (j := c.get(f"/jobs/{job_id}").json())["dataset"] and j, 120, "the data report")
        assert job["state"] == "running" and job["phase"] == "train" and job["epoch"] < 5000
        dataset = job["dataset"]
        assert (dataset["images"], dataset["files_found"], dataset["skipped"]) == (48, 72, 24)
        named = dict(map(tuple, dataset["skipped_examples"]))
        assert len(named) == 20 and all(name.startswith("class0/") for name in named)
        assert dataset["skipped_by_reason"] == {"not an image": 23, "smaller than 8px": 1}
        assert set(named.values()) <= set(dataset["skipped_by_reason"])
        listed = next(j for j in c.get("/jobs").json()["jobs"] if j["job_id"] == job_id)
        assert listed["dataset"] == dataset
    finally:
        c.post(f"/jobs/{job_id}/cancel", headers=AUTH)
        wait_job(c, job_id, {"cancelled"}, timeout=120)
