"""POST /train and /jobs through the real app object, in-process, with a fake queue."""
from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.conftest import AUTH, make_settings
from tests.helpers import write_blob_images
from worker.store import JobStore

SYNTH = {"dataset": "synthetic", "synthetic_images": 64, "ngf": 8, "ndf": 8, "batch_size": 16, "epochs": 2}
UNKNOWN = "20990101-000000-abcdef"


def test_train_records_a_queued_job_and_sends_its_message(client, queue):
    r = client.post("/train", json=SYNTH, headers=AUTH)
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    assert r.headers["location"] == f"/jobs/{job_id}" and queue.sent == [job_id]
    job = client.get(f"/jobs/{job_id}").json()
    assert (job["state"], job["epochs"], job["config"]["ngf"], job["data"]["dataset"]) == ("queued", 2, 8, "synthetic")
    assert [j["job_id"] for j in client.get("/jobs").json()["jobs"]] == [job_id]


@pytest.mark.parametrize("method,path", [("post", "/train"), ("post", f"/jobs/{UNKNOWN}/cancel"),
                                         ("post", f"/jobs/{UNKNOWN}/resume"), ("post", "/models/default")])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
def test_state_changes_need_the_token(client, method, path, headers):
    r = client.request(method.upper(), path, json=SYNTH, headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_without_an_api_token_state_changes_are_503(tmp_path, queue):
    settings = make_settings(tmp_path).model_copy(update={"api_token": ""})
    with TestClient(create_app(settings, enqueue=queue)) as c:
        r = c.post("/train", json=SYNTH, headers=AUTH)
    assert r.status_code == 503 and "API_TOKEN" in r.json()["detail"]


def test_a_folder_job_stores_its_folder_relative_to_data_root(client, settings):
    write_blob_images(settings.data_root / "faces", 2)
    r = client.post("/train", json={"data_dir": "faces/", "epochs": 1}, headers=AUTH)
    assert r.status_code == 202
    assert client.get(f"/jobs/{r.json()['job_id']}").json()["data"] == {"data_dir": "faces"}


@pytest.mark.parametrize("make,data_dir,status,words", [
    (lambda root: None, "missing", 404, "no folder"),
    (lambda root: (root / "empty").mkdir(), "empty", 422, "no image files"),
    (lambda root: (root / "loop").symlink_to(root / "loop"), "loop", 422, "symlink loop"),
    (lambda root: None, "x" * 300, 422, "too long"),
    (lambda root: None, "../etc", 422, "plain folder name"),
])
def test_unusable_data_folders_are_4xx_with_the_reason(client, settings, make, data_dir, status, words):
    make(settings.data_root)
    r = client.post("/train", json={"data_dir": data_dir}, headers=AUTH)
    assert r.status_code == status and words in r.text
    assert client.get("/jobs").json()["jobs"] == []


def test_an_unreachable_queue_is_503_with_retry_after_and_no_job(client, queue):
    queue.refuse = True
    r = client.post("/train", json=SYNTH, headers=AUTH)
    assert r.status_code == 503 and r.headers["retry-after"] and "not reachable" in r.json()["detail"]
    assert client.get("/jobs").json()["jobs"] == []


def test_a_queue_that_never_answers_is_503_within_the_deadline(tmp_path):
    def hang(job_id):
        time.sleep(5)

    settings = make_settings(tmp_path, broker_timeout=0.3)
    with TestClient(create_app(settings, enqueue=hang)) as c:
        t0 = time.monotonic()
        answers = [c.post("/train", json=SYNTH, headers=AUTH) for _ in range(4)]
        elapsed = time.monotonic() - t0
        assert [r.status_code for r in answers] == [503] * 4 and all(r.headers["retry-after"] for r in answers)
        # the first two wait out the deadline (1.3 s each); the rest are told at once
        assert elapsed < 4.5, elapsed
        assert c.get("/jobs").json()["jobs"] == []
        assert c.get("/healthz").status_code == 200


def test_more_active_jobs_than_allowed_is_429(tmp_path, queue):
    with TestClient(create_app(make_settings(tmp_path, max_active_jobs=2), enqueue=queue)) as c:
        assert [c.post("/train", json=SYNTH, headers=AUTH).status_code for _ in range(3)] == [202, 202, 429]
        r = c.post("/train", json=SYNTH, headers=AUTH)
        assert r.headers["retry-after"] and "already queued or running" in r.json()["detail"]


def test_an_idempotency_key_answers_with_the_same_job_and_refuses_another_body(client, queue):
    key = {**AUTH, "Idempotency-Key": "abc"}
    first = client.post("/train", json=SYNTH, headers=key).json()["job_id"]
    assert client.post("/train", json=SYNTH, headers=key).json()["job_id"] == first
    r = client.post("/train", json={**SYNTH, "epochs": 3}, headers=key)
    assert r.status_code == 422 and "different request" in r.json()["detail"]
    assert queue.sent == [first]


def test_cancel_and_resume_follow_the_state_machine(client, queue):
    job_id = client.post("/train", json=SYNTH, headers=AUTH).json()["job_id"]
    r = client.post(f"/jobs/{job_id}/cancel", headers=AUTH)
    assert r.status_code == 202 and r.json()["state"] == "cancelled"
    r = client.post(f"/jobs/{job_id}/cancel", headers=AUTH)
    assert r.status_code == 409 and "already cancelled" in r.json()["detail"]
    r = client.post(f"/jobs/{job_id}/resume", headers=AUTH)
    assert r.status_code == 202 and r.json()["state"] == "queued" and queue.sent == [job_id, job_id]
    r = client.post(f"/jobs/{job_id}/resume", headers=AUTH)
    assert r.status_code == 409 and "only cancelled or failed" in r.json()["detail"]


def test_resume_that_cannot_be_queued_is_503_and_changes_nothing(client, queue):
    job_id = client.post("/train", json=SYNTH, headers=AUTH).json()["job_id"]
    client.post(f"/jobs/{job_id}/cancel", headers=AUTH)
    queue.refuse = True
    r = client.post(f"/jobs/{job_id}/resume", headers=AUTH)
    assert r.status_code == 503 and client.get(f"/jobs/{job_id}").json()["state"] == "cancelled"


@pytest.mark.parametrize("method,path", [
    ("get", f"/jobs/{UNKNOWN}"), ("get", f"/jobs/{UNKNOWN}/metrics"), ("get", f"/jobs/{UNKNOWN}/snapshots/1.png"),
    ("post", f"/jobs/{UNKNOWN}/cancel"), ("post", f"/jobs/{UNKNOWN}/resume")])
def test_unknown_jobs_are_404(client, method, path):
    assert client.request(method.upper(), path, headers=AUTH).status_code == 404


@pytest.mark.parametrize("path", ["/jobs/..%2f..%2fetc", "/jobs/not-an-id", "/jobs/%00/metrics"])
def test_malformed_job_ids_are_refused_before_touching_disk(client, path):
    assert client.get(path).status_code in (404, 422)


@pytest.mark.parametrize("content", [b"null", b"{}", b'{"state": "exploded"}', b'{"job_id": "x', b"\x00" * 10])
def test_a_damaged_record_is_shown_as_damaged_and_nothing_answers_500(client, settings, content):
    good = client.post("/train", json=SYNTH, headers=AUTH).json()["job_id"]
    bad = client.post("/train", json=SYNTH, headers=AUTH).json()["job_id"]
    (settings.runs_dir / bad / "job.json").write_bytes(content)
    jobs = {j["job_id"]: j for j in client.get("/jobs").json()["jobs"]}
    assert jobs[bad]["state"] == "damaged" and "job.json" in jobs[bad]["error"]
    assert jobs[good]["state"] == "queued"
    assert client.get(f"/jobs/{bad}").json()["state"] == "damaged"
    assert client.get("/").status_code == 200
    assert 'dcgan_jobs{state="damaged"} 1.0' in client.get("/metrics").text
    assert client.post(f"/jobs/{bad}/cancel", headers=AUTH).status_code == 409
    assert client.post("/train", json=SYNTH, headers=AUTH).status_code == 202


def test_only_the_operator_sees_which_worker_trains_a_job(client, settings):
    job_id = client.post("/train", json=SYNTH, headers=AUTH).json()["job_id"]
    from worker import lifecycle
    JobStore(settings.runs_dir).update(job_id, lambda r: lifecycle.start(r, "gpu-box:4242", 3))
    assert client.get(f"/jobs/{job_id}").json()["worker"] is None
    assert client.get("/jobs").json()["jobs"][0]["worker"] is None
    assert client.get(f"/jobs/{job_id}", headers=AUTH).json()["worker"] == "gpu-box:4242"


def test_train_answers_with_the_epochs_and_steps_it_will_run(client, settings):
    r = client.post("/train", json={**SYNTH, "synthetic_images": 100, "batch_size": 16, "epochs": 3}, headers=AUTH)
    answer = r.json()
    assert {k: answer[k] for k in ("epochs", "images", "batch_size", "steps_per_epoch", "steps", "exact")} == {
        "epochs": 3, "images": 100, "batch_size": 16, "steps_per_epoch": 6, "steps": 18, "exact": True}
    folder = write_blob_images(settings.data_root / "mine", 40)
    (folder / "class0" / "notes.txt").write_text("not an image, not counted")
    (folder / "class0" / "broken.png").write_bytes(b"counted: found, skipped only when decoded")
    body = {k: v for k, v in SYNTH.items() if k not in ("dataset", "synthetic_images")}
    answer = client.post("/train", json={**body, "data_dir": "mine", "preset": "fast", "epochs": 5},
                         headers=AUTH).json()
    per_epoch = 41 // answer["batch_size"]
    assert (answer["epochs"], answer["images"], answer["steps_per_epoch"], answer["steps"], answer["exact"]) == (
        5, 41, per_epoch, 5 * per_epoch, False)
    capped = client.post("/train", json={**body, "data_dir": "mine", "max_images": 20}, headers=AUTH).json()
    assert (capped["images"], capped["steps_per_epoch"]) == (20, 1)


def test_the_demo_job_make_run_queues_is_a_valid_body_of_1536_fast_steps(client):
    body = json.loads((Path(__file__).resolve().parents[2] / "scripts" / "demo-job.json").read_text())
    answer = client.post("/train", json=body, headers=AUTH).json()
    assert (answer["images"], answer["batch_size"], answer["steps"]) == (1024, 32, 1536)
    assert max(body["snapshot_epochs"]) == body["epochs"]  # its last epoch is drawn


def test_a_job_shows_no_grid_of_an_epoch_its_record_has_not_counted_yet(client, settings):
    """The grid is written before the epoch's SWD and checkpoint, and its report comes after them:
    meanwhile the card showed "epoch 1/2" beside the epoch-2 grid."""
    from model.progress import TrainProgress
    from model.rundir import RunDir
    from worker import lifecycle
    job_id = client.post("/train", json=SYNTH, headers=AUTH).json()["job_id"]
    store = JobStore(settings.runs_dir)
    store.update(job_id, lambda r: lifecycle.start(r, "test:1", 3))
    store.update(job_id, lambda r: lifecycle.report(r, TrainProgress("train", 1, 2, step=4, epoch_end=True)))
    run = RunDir(store.run_dir(job_id))
    run.snapshots.mkdir(parents=True, exist_ok=True)
    for epoch in (1, 2):
        run.snapshot_path(epoch).write_bytes(b"png")
    job = client.get(f"/jobs/{job_id}").json()
    assert (job["epoch"], job["snapshots"]) == (1, [1])
    assert client.get("/jobs").json()["jobs"][0]["snapshots"] == [1]
    assert "snapshots/2.png" not in client.get("/").text and "snapshots/1.png" in client.get("/").text
    store.update(job_id, lambda r: lifecycle.report(r, TrainProgress("train", 2, 2, step=8, epoch_end=True)))
    assert client.get(f"/jobs/{job_id}").json()["snapshots"] == [1, 2]


def test_anonymous_readers_see_no_host_paths_in_errors(client, settings):
    from worker import lifecycle
    job_id = client.post("/train", json=SYNTH, headers=AUTH).json()["job_id"]
    message = (f"data folder {settings.data_root.resolve()}/faces does not exist; cache in "
               f"{settings.runs_dir.resolve()}/_cache/x.u8; see /etc/secret/place.txt")
    JobStore(settings.runs_dir).update(job_id, lambda r: lifecycle.fail(r, message))
    for public in (client.get(f"/jobs/{job_id}").json(), client.get("/jobs").json()["jobs"][0]):
        assert public["error"] == ("data folder DATA_ROOT/faces does not exist; cache in "
                                   "RUNS_DIR/_cache/x.u8; see .../place.txt")
    assert str(settings.runs_dir.resolve()) not in client.get("/").text
    assert client.get(f"/jobs/{job_id}", headers=AUTH).json()["error"] == message


def _hold(path, ready, release):
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    ready.set()
    release.wait(20)


def test_a_record_locked_by_another_process_makes_cancel_503_without_stalling_the_app(client, settings):
    job_id = client.post("/train", json=SYNTH, headers=AUTH).json()["job_id"]
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(settings.runs_dir / job_id / ".record.lock", ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        r = client.post(f"/jobs/{job_id}/cancel", headers=AUTH)
        assert r.status_code == 503 and r.headers["retry-after"] and "another process" in r.json()["detail"]
    finally:
        release.set()
        holder.join(10)
    assert client.post(f"/jobs/{job_id}/cancel", headers=AUTH).status_code == 202


def test_delete_removes_a_finished_job_with_its_files_and_refuses_an_active_one(client, settings, queue):
    job_id = client.post("/train", json=SYNTH, headers=AUTH).json()["job_id"]
    r = client.delete(f"/jobs/{job_id}", headers=AUTH)
    assert r.status_code == 409 and "cancel it before deleting it" in r.json()["detail"]
    client.post(f"/jobs/{job_id}/cancel", headers=AUTH)
    assert client.delete(f"/jobs/{job_id}").status_code == 401
    assert client.delete(f"/jobs/{job_id}", headers=AUTH).status_code == 204
    assert not (settings.runs_dir / job_id).exists() and list(settings.runs_dir.glob(".deleted-*")) == []
    assert client.get(f"/jobs/{job_id}").status_code == 404
    assert client.delete(f"/jobs/{job_id}", headers=AUTH).status_code == 404
    assert client.get("/jobs").json()["jobs"] == []


def test_a_damaged_job_can_be_deleted(client, settings):
    job_id = client.post("/train", json=SYNTH, headers=AUTH).json()["job_id"]
    (settings.runs_dir / job_id / "job.json").write_text("{}")
    assert client.delete(f"/jobs/{job_id}", headers=AUTH).status_code == 204


def test_resume_with_more_epochs_extends_a_job(client, settings, queue):
    from worker import lifecycle
    job_id = client.post("/train", json=SYNTH, headers=AUTH).json()["job_id"]
    JobStore(settings.runs_dir).update(job_id, lambda r: lifecycle.succeed(lifecycle.start(r, "h:1", 3), None))
    r = client.post(f"/jobs/{job_id}/resume", json={"epochs": 2}, headers=AUTH)
    assert r.status_code == 409 and "already has 2 epochs" in r.json()["detail"]
    r = client.post(f"/jobs/{job_id}/resume", json={"epochs": 5}, headers=AUTH)
    assert r.status_code == 202 and (r.json()["state"], r.json()["epochs"]) == ("queued", 5)
    assert r.json()["config"]["epochs"] == 5 and queue.sent[-1] == job_id
    assert client.post(f"/jobs/{job_id}/resume", json={"epochs": 0}, headers=AUTH).status_code == 422
