"""POST /train and the /jobs resource: create, list, inspect, cancel, resume, snapshots, metrics."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Header, HTTPException, Path as PathParam, Response
from fastapi.responses import FileResponse

from app.deps import Authorized, SettingsDep, StoreDep
from app.errors import problems
from app.queue import BrokerUnavailable, enqueue
from app.schemas import Accepted, Job, JobList, MetricsSeries, TrainRequest
from app.settings import Settings
from model.data import IMAGE_EXTENSIONS
from model.rundir import RunDir
from worker.jobs import ACTIVE, JOB_ID, JobConflict, JobNotFound, JobStore, new_job_id

router = APIRouter(tags=["jobs"])

JobId = Annotated[str, PathParam(pattern=JOB_ID.pattern, description="job id, as POST /train returned it")]
RETRY_AFTER = {"Retry-After": "5"}


def resolve_data_dir(settings: Settings, data_dir: str) -> str:
    """`data_dir` (already a plain relative path, see TrainRequest) as a clean path relative to
    DATA_ROOT: 404 when there is no such folder, 422 when it resolves outside DATA_ROOT through
    a symlink or holds no image."""
    root = settings.data_root.resolve()
    target = (root / data_dir).resolve()
    if not target.is_relative_to(root):
        raise HTTPException(422, "data_dir resolves outside DATA_ROOT (a symlink?); refused")
    if not target.is_dir():
        raise HTTPException(404, f"no folder {data_dir!r} under DATA_ROOT")
    if not _has_image(target):
        raise HTTPException(422, f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in {data_dir!r}")
    return str(target.relative_to(root))


def _has_image(folder: Path) -> bool:
    for _dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if any(f.lower().endswith(IMAGE_EXTENSIONS) for f in filenames):
            return True
    return False


def job_view(store: JobStore, record: dict[str, Any]) -> Job:
    run = RunDir(store.run_dir(record["job_id"]))
    cfg = record["config"]
    return Job(**{**record, "epochs": record.get("epochs", cfg["epochs"]), "config": cfg,
                  "snapshots": run.snapshot_epochs()})


def _read(store: JobStore, job_id: str) -> dict[str, Any]:
    try:
        return store.read(job_id)
    except JobNotFound:
        raise HTTPException(404, f"no job {job_id}") from None


@router.post("/train", status_code=202, response_model=Accepted, dependencies=[Authorized],
             responses=problems(401, 404, 413, 422, 429, 503),
             summary="Start a training job",
             description="Queues a job; a worker trains it. Send an `Idempotency-Key` header to "
                         "make retries safe: the same key always answers with the same job.")
async def start_training(body: TrainRequest, response: Response, settings: SettingsDep, store: StoreDep,
                         idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> Accepted:
    cfg = body.train_config()
    if body.dataset == "synthetic":
        data = {"dataset": "synthetic", "synthetic_images": body.synthetic_images, "synthetic_seed": cfg.seed}
    else:
        data = {"data_dir": resolve_data_dir(settings, body.data_dir)}

    job_id = new_job_id()
    if idempotency_key is not None:
        existing = await anyio.to_thread.run_sync(store.claim_idempotency_key, idempotency_key, job_id)
        if existing is not None:
            response.headers["Location"] = f"/jobs/{existing}"
            return Accepted(job_id=existing, status_url=f"/jobs/{existing}")
    try:
        if await anyio.to_thread.run_sync(store.count_active) >= settings.max_active_jobs:
            raise HTTPException(429, f"{settings.max_active_jobs} jobs are already queued or running; "
                                     "wait for one to finish or cancel one", headers=RETRY_AFTER)
        store.create(job_id, {"config": cfg.to_dict(), "data": data, "epochs": cfg.epochs})
        try:
            await anyio.to_thread.run_sync(enqueue, job_id)
        except BrokerUnavailable as exc:
            store.delete(job_id)  # no orphan record: the job never existed
            raise HTTPException(503, f"{exc}; nothing was queued, try again shortly",
                                headers=RETRY_AFTER) from None
    except BaseException:
        if idempotency_key is not None:
            store.release_idempotency_key(idempotency_key)
        raise
    response.headers["Location"] = f"/jobs/{job_id}"
    return Accepted(job_id=job_id, status_url=f"/jobs/{job_id}")


@router.get("/jobs", response_model=JobList, summary="All jobs, newest first")
async def list_jobs(store: StoreDep) -> JobList:
    records = await anyio.to_thread.run_sync(store.list)
    return JobList(jobs=[job_view(store, r) for r in records])


@router.get("/jobs/{job_id}", response_model=Job, responses=problems(404, 422), summary="One job")
async def get_job(job_id: JobId, store: StoreDep) -> Job:
    return job_view(store, _read(store, job_id))


@router.post("/jobs/{job_id}/cancel", response_model=Job, status_code=202, dependencies=[Authorized],
             responses=problems(401, 404, 409, 422),
             summary="Cancel a job",
             description="A queued job is cancelled at once; a running one checkpoints and stops "
                         "within one batch (its state turns `cancelled` then).")
async def cancel_job(job_id: JobId, store: StoreDep) -> Job:
    _read(store, job_id)

    def change(rec: dict[str, Any]) -> dict[str, Any]:
        if rec["state"] not in ACTIVE:
            raise JobConflict(f"job {job_id} is already {rec['state']}")
        store.request_cancel(job_id)
        if rec["state"] == "queued" and not store.is_owned(job_id):
            return {"state": "cancelled", "finished_at": time.time()}
        return {"cancel_requested": True}

    try:
        rec = store.update(job_id, change)
    except JobConflict as exc:
        raise HTTPException(409, str(exc)) from None
    return job_view(store, rec)


@router.post("/jobs/{job_id}/resume", response_model=Job, status_code=202, dependencies=[Authorized],
             responses=problems(401, 404, 409, 422, 503),
             summary="Resume a cancelled or failed job from its last checkpoint")
async def resume_job(job_id: JobId, store: StoreDep) -> Job:
    before = _read(store, job_id)

    def change(rec: dict[str, Any]) -> dict[str, Any]:
        if rec["state"] not in ("cancelled", "failed"):
            raise JobConflict(f"job {job_id} is {rec['state']}; only cancelled or failed jobs resume")
        store.clear_cancel(job_id)
        return {"state": "queued", "error": None, "crashes": 0, "cancel_requested": False,
                "finished_at": None}

    try:
        rec = store.update(job_id, change)
    except JobConflict as exc:
        raise HTTPException(409, str(exc)) from None
    try:
        await anyio.to_thread.run_sync(enqueue, job_id)
    except BrokerUnavailable as exc:
        store.update(job_id, state=before["state"], error=before.get("error"),
                     finished_at=before.get("finished_at"))
        raise HTTPException(503, f"{exc}; the job was left {before['state']}", headers=RETRY_AFTER) from None
    return job_view(store, rec)


@router.get("/jobs/{job_id}/snapshots/{epoch}.png", response_class=FileResponse,
            responses={200: {"content": {"image/png": {}}, "description": "the 8x8 fixed-noise grid"},
                       **problems(404, 422)},
            summary="The fixed-noise grid rendered after an epoch")
async def get_snapshot(job_id: JobId, epoch: Annotated[int, PathParam(ge=1, le=100_000)],
                       store: StoreDep) -> FileResponse:
    path = RunDir(store.run_dir(job_id)).snapshot_path(epoch)
    if not path.is_file():
        raise HTTPException(404, f"job {job_id} has no snapshot for epoch {epoch}")
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "public, max-age=60"})


@router.get("/jobs/{job_id}/metrics", response_model=MetricsSeries, responses=problems(404, 422),
            summary="Loss, speed and quality series for plots")
async def get_metrics(job_id: JobId, store: StoreDep) -> MetricsSeries:
    _read(store, job_id)
    rows = await anyio.to_thread.run_sync(RunDir(store.run_dir(job_id)).read_metrics)
    epochs = [r for r in rows if r.get("kind") == "epoch"]
    steps = [r for r in rows if r.get("kind") == "interval"]
    col = lambda rs, k: [r.get(k) for r in rs]  # noqa: E731
    swd_rows = [r for r in epochs if r.get("swd") is not None]
    return MetricsSeries(job_id=job_id, epochs=col(epochs, "epoch"), loss_d=col(epochs, "loss_d"),
                         loss_g=col(epochs, "loss_g"), d_x=col(epochs, "d_x"), d_g_z=col(epochs, "d_g_z"),
                         images_per_sec=col(epochs, "images_per_sec"),
                         epoch_seconds=col(epochs, "epoch_seconds"),
                         swd_epochs=col(swd_rows, "epoch"), swd=col(swd_rows, "swd"),
                         steps=col(steps, "step"), step_loss_d=col(steps, "loss_d"),
                         step_loss_g=col(steps, "loss_g"))
