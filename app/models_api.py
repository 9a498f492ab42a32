"""The model /generate serves by default (pin, unpin) and the checkpoints each job keeps."""
from __future__ import annotations

from fastapi import APIRouter, Response

from app.deps import Authorized, RegistryDep, SettingsDep, StoreDep
from app.errors import problems
from app.jobs_api import JobId, metric_series
from app.registry import BadModelRequest, NoModel, checkpoint_tag
from app.schemas import CheckpointInfo, CheckpointList, DefaultModel, ModelInfo
from model.checkpoint import list_checkpoints, pinned_epochs
from model.rundir import RunDir

router = APIRouter(tags=["models"])


@router.get("/models/default", response_model=ModelInfo, responses=problems(404, 503),
            summary="The model /generate uses when no job is named",
            description="The pinned (job, epoch) if any; else, among the succeeded jobs trained on "
                        "the same data as the most recently succeeded one, the checkpoint with the "
                        "lowest SWD; else that job's newest checkpoint; else (nothing succeeded yet) "
                        "the newest checkpoint of any job. `reason` says which rule chose it.")
def get_default_model(registry: RegistryDep) -> ModelInfo:
    return registry.describe(registry.get())


@router.post("/models/default", response_model=ModelInfo, dependencies=[Authorized],
             responses=problems(401, 404, 413, 422, 503),
             summary="Pin the model /generate uses (a job, and optionally one epoch)",
             description="A pinned epoch's checkpoint is never pruned while it is pinned.")
def set_default_model(body: DefaultModel, registry: RegistryDep) -> ModelInfo:
    try:
        model = registry.pin(body.job_id, body.epoch)
    except NoModel as exc:  # that job has no (usable) checkpoint to pin
        raise BadModelRequest(str(exc)) from None
    return registry.describe(model)


@router.delete("/models/default", status_code=204, dependencies=[Authorized], responses=problems(401),
               summary="Unpin: /generate goes back to the rule (the best-SWD checkpoint on the newest data)")
def unpin_default_model(registry: RegistryDep) -> Response:
    registry.unpin()
    return Response(status_code=204)


@router.get("/jobs/{job_id}/checkpoints", response_model=CheckpointList, responses=problems(404, 422),
            summary="The checkpoints a job keeps, with their quality and whether one is pinned or served")
def list_job_checkpoints(job_id: JobId, store: StoreDep, registry: RegistryDep,
                         settings: SettingsDep) -> CheckpointList:
    run = RunDir(store.run_dir(job_id))
    if not run.root.is_dir():
        store.read(job_id)  # JobNotFound: 404
    series = metric_series(job_id, run, settings)
    swd = dict(zip(series.swd_epochs, series.swd, strict=True))
    pinned = pinned_epochs(run.checkpoints)
    pin = registry.pinned()
    try:
        served = registry.get().tag
    except Exception:  # no model, or none loadable: nothing is served
        served = None
    out = []
    for ref in list_checkpoints(run.checkpoints):
        try:
            st = ref.path.stat()
        except OSError:
            continue  # pruned meanwhile
        is_pinned = ref.ends_epoch and (ref.epoch in pinned or pin == (job_id, ref.epoch))
        out.append(CheckpointInfo(epoch=ref.epoch, batch=ref.batch, name=ref.name, bytes=st.st_size,
                                  modified_at=st.st_mtime, swd=swd.get(ref.epoch) if ref.ends_epoch else None,
                                  pinned=is_pinned, served=served == checkpoint_tag(job_id, ref.name)))
    return CheckpointList(job_id=job_id, checkpoints=out)
