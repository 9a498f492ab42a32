"""POST /train and the /jobs resource: create, list, inspect, cancel, resume, snapshots, metrics.

Every route here touches the job store (fsync, locks, directory listings), so every route is a
plain `def`: FastAPI runs it in its thread pool and the event loop never waits on the disk.
Errors of the job side (not found, conflict, busy, queue down) become HTTP answers in
app/errors.py.

POST /train's body carries the app's caps in its bounds, so the routes are made per app by
`router(settings)`. (No postponed annotations here: FastAPI reads the body's type when the route
is made, and that type is local to the call.)
"""
import functools
import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Body, Header, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from app.deps import Authorized, EnqueueDep, OperatorDep, RegistryDep, SettingsDep, StoreDep
from app.errors import Missing, problems
from app.schemas import Accepted, Job, JobList, MetricsSeries, ResumeRequest, WrittenAsInteger, train_request
from app.settings import Settings
from model.data import count_image_files
from model.rundir import RunDir, epochs_text
from worker import jobs
from worker.datasource import folder_data
from worker.errors import JobDamaged, JobNotFound
from worker.records import JOB_ID, DamagedRecord, JobRecord, JobState, SyntheticData
from worker.store import JobStore

_routes = APIRouter(tags=["jobs"])  # all but POST /train, which router() adds per app

JobId = Annotated[str, PathParam(pattern=JOB_ID.pattern, description="job id, as POST /train returned it")]


_ABSOLUTE_PATH = re.compile(r"(?<![\w.~])/[^\s'\"(),;:]+")


def public_text(text: str | None, settings: Settings) -> str | None:
    """An error or warning as an anonymous reader may see it: host paths become RUNS_DIR/...,
    DATA_ROOT/... or just the file's name."""
    if not text:
        return text
    for root, name in ((settings.runs_dir, "RUNS_DIR"), (settings.data_root, "DATA_ROOT")):
        for form in {str(root.resolve()), str(root.absolute())}:
            text = text.replace(form, name)
    return _ABSOLUTE_PATH.sub(lambda m: ".../" + m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


def job_view(store: JobStore, record: JobRecord | DamagedRecord, public: Settings | None = None) -> Job:
    """A record as GET /jobs shows it. With `public` (the settings, for an anonymous reader),
    the worker's host:pid is left out and host paths in messages are hidden."""
    hide = (lambda text: public_text(text, public)) if public is not None else (lambda text: text)
    if isinstance(record, DamagedRecord):
        return Job(job_id=record.job_id, state=JobState.DAMAGED, error=hide(record.error),
                   updated_at=record.updated_at)
    run = RunDir(store.run_dir(record.job_id))
    fields = record.model_dump(include=set(Job.model_fields))  # not the worker's own flags
    # Only grids of epochs the record counts as done: a grid is written before its epoch's SWD and
    # checkpoint, and the card showed "epoch 9/40" beside the epoch-10 grid until that report came.
    snapshots = [e for e in run.snapshot_epochs() if e <= record.epoch]
    return Job(**{**fields, "snapshots": snapshots, "error": hide(record.error),
                  "warning": hide(record.warning), "worker": None if public is not None else record.worker})


def read_view(store: JobStore, job_id: str, public: Settings | None = None) -> Job:
    """One job as readers see it; a damaged record is shown as such (never a 500)."""
    try:
        return job_view(store, store.read(job_id), public)
    except JobDamaged as exc:
        return job_view(store, DamagedRecord(job_id=job_id, error=str(exc), updated_at=0.0), public)


def router(settings: Settings) -> APIRouter:
    """POST /train, its body bounded by `settings`' caps, then the /jobs routes."""
    routes = APIRouter(tags=["jobs"])
    TrainBody = train_request(settings)

    @routes.post("/train", status_code=202, response_model=Accepted, dependencies=[Authorized],
                 responses=problems(401, 404, 413, 422, 429, 503),
                 summary="Start a training job",
                 description="Queues a job; a worker trains it. Send an `Idempotency-Key` header to "
                             "make retries safe: the same key with the same body always answers with "
                             "the same job (with another body, 422).")
    def start_training(body: TrainBody, response: Response, store: StoreDep, enqueue: EnqueueDep,
                       idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> Accepted:
        cfg = body.train_config()
        if body.dataset == "synthetic":
            data = SyntheticData(synthetic_images=body.synthetic_images, synthetic_seed=cfg.seed)
        else:
            data = folder_data(settings.data_root, body.data_dir)
        job_id, _created = jobs.submit(store, cfg.to_dict(), data, enqueue, max_active=settings.max_active_jobs,
                                       idempotency_key=idempotency_key)
        response.headers["Location"] = f"/jobs/{job_id}"
        if isinstance(data, SyntheticData):
            images, exact = data.synthetic_images, True
        else:
            images, exact = count_image_files(Path(settings.data_root).resolve() / data.data_dir), False
        if cfg.max_images:
            images = min(images, cfg.max_images)
        per_epoch = images // cfg.batch_size
        return Accepted(job_id=job_id, status_url=f"/jobs/{job_id}", epochs=cfg.epochs, images=images,
                        batch_size=cfg.batch_size, steps_per_epoch=per_epoch, steps=cfg.epochs * per_epoch,
                        exact=exact)

    routes.include_router(_routes)
    return routes


@_routes.get("/jobs", response_model=JobList, summary="All jobs, newest first")
def list_jobs(store: StoreDep, settings: SettingsDep, operator: OperatorDep) -> JobList:
    public = None if operator else settings
    return JobList(jobs=[job_view(store, r, public) for r in store.list()])


@_routes.get("/jobs/{job_id}", response_model=Job, responses=problems(404, 422), summary="One job")
def get_job(job_id: JobId, store: StoreDep, settings: SettingsDep, operator: OperatorDep) -> Job:
    return read_view(store, job_id, None if operator else settings)


@_routes.post("/jobs/{job_id}/cancel", response_model=Job, status_code=202, dependencies=[Authorized],
             responses=problems(401, 404, 409, 422, 503),
             summary="Cancel a job",
             description="A queued job is cancelled at once; a running one checkpoints and stops "
                         "within one batch (its state turns `cancelled` then).")
def cancel_job(job_id: JobId, store: StoreDep) -> Job:
    return job_view(store, jobs.cancel(store, job_id))


@_routes.post("/jobs/{job_id}/resume", response_model=Job, status_code=202, dependencies=[Authorized],
             responses=problems(401, 404, 409, 422, 429, 503),
             summary="Resume a cancelled or failed job from its last checkpoint, or extend a job",
             description="With `{\"epochs\": N}` (more than it has), a succeeded, cancelled or failed "
                         "job trains on to N epochs. A resumed job is active again: like a new one, it "
                         "needs room under MAX_ACTIVE_JOBS (429 otherwise).")
def resume_job(job_id: JobId, store: StoreDep, enqueue: EnqueueDep, settings: SettingsDep,
               body: Annotated[ResumeRequest | None, Body()] = None) -> Job:
    return job_view(store, jobs.resume(store, job_id, enqueue, body.epochs if body else None,
                                       max_active=settings.max_active_jobs))


@_routes.delete("/jobs/{job_id}", status_code=204, dependencies=[Authorized],
               responses=problems(401, 404, 409, 422, 503),
               summary="Delete a job that is not queued or running, with its files (and its pin)")
def delete_job(job_id: JobId, store: StoreDep, registry: RegistryDep) -> Response:
    jobs.delete(store, job_id)
    registry.forget_job(job_id)
    return Response(status_code=204)


@_routes.get("/jobs/{job_id}/snapshots/{epoch}.png", response_class=FileResponse,
            responses={200: {"content": {"image/png": {}}, "description": "the 8x8 fixed-noise grid"},
                       **problems(404, 422)},
            summary="The fixed-noise grid rendered after an epoch")
def get_snapshot(job_id: JobId, epoch: Annotated[int, PathParam(ge=1, le=100_000), WrittenAsInteger],
                 store: StoreDep) -> FileResponse:
    run = RunDir(store.run_dir(job_id))
    path = run.snapshot_path(epoch)
    if not path.is_file():
        if not run.root.is_dir():
            raise JobNotFound(job_id)
        raise Missing(f"job {job_id} has no snapshot for epoch {epoch}; "
                      f"its snapshots: epochs {epochs_text(run.snapshot_epochs())}")
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "public, max-age=60"})


@_routes.get("/jobs/{job_id}/reals.png", response_class=FileResponse,
            responses={200: {"content": {"image/png": {}}, "description": "a grid of training images"},
                       **problems(404, 422)},
            summary="A grid of the job's training images (written when training starts)")
def get_reals(job_id: JobId, store: StoreDep) -> FileResponse:
    path = RunDir(store.run_dir(job_id)).reals_path
    if not path.is_file():
        raise Missing(f"job {job_id} has no grid of training images yet")
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "public, max-age=60"})


@_routes.get("/jobs/{job_id}/metrics", response_model=MetricsSeries, responses=problems(404, 422),
            summary="Loss, speed and quality series for plots",
            description="At most MAX_METRIC_POINTS evenly spaced points per series, however long the job.")
def get_metrics(job_id: JobId, store: StoreDep, settings: SettingsDep) -> MetricsSeries:
    store.read(job_id)
    return metric_series(job_id, RunDir(store.run_dir(job_id)), settings)


def metric_series(job_id: str, run: RunDir, settings: Settings) -> MetricsSeries:
    try:
        st = run.metrics_path.stat()
        version = (st.st_size, st.st_mtime_ns)
    except FileNotFoundError:
        version = (0, 0)
    return _series(job_id, str(run.metrics_path), version, settings.max_metric_points)


@functools.lru_cache(maxsize=8)
def _series(job_id: str, path: str, version: tuple[int, int], max_points: int) -> MetricsSeries:
    """Read once per version of the file (its size and mtime), thinned as it is read."""
    rows = RunDir(Path(path).parent).read_metrics(max_rows=max_points)
    epochs = [r for r in rows if r.get("kind") == "epoch"]
    steps = [r for r in rows if r.get("kind") == "interval"]
    col = lambda rs, k: [r.get(k) for r in rs]  # noqa: E731
    swd_rows = [r for r in epochs if r.get("swd") is not None]
    copy_rows = [r for r in epochs if r.get("copy_rate") is not None and 0 <= r["copy_rate"] <= 1]
    distance = [d if d is not None and d >= 0 else None for d in col(copy_rows, "copy_distance")]
    return MetricsSeries(job_id=job_id, epochs=col(epochs, "epoch"), loss_d=col(epochs, "loss_d"),
                         loss_g=col(epochs, "loss_g"), d_x=col(epochs, "d_x"), d_g_z=col(epochs, "d_g_z"),
                         images_per_sec=col(epochs, "images_per_sec"),
                         epoch_seconds=col(epochs, "epoch_seconds"),
                         swd_epochs=col(swd_rows, "epoch"), swd=col(swd_rows, "swd"),
                         copy_epochs=col(copy_rows, "epoch"), copy_rate=col(copy_rows, "copy_rate"),
                         copy_distance=distance,
                         steps=col(steps, "step"), step_loss_d=col(steps, "loss_d"),
                         step_loss_g=col(steps, "loss_g"), step_d_x=col(steps, "d_x"),
                         step_d_g_z=col(steps, "d_g_z"))
