"""The model /generate serves by default (pin, unpin) and the checkpoints each job keeps."""
from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Response

from app.default_model import read_small_json
from app.deps import Authorized, RegistryDep, SettingsDep, StoreDep
from app.errors import problems
from app.jobs_api import JobId, metric_series, read_view
from app.registry import BadModelRequest, NoModel, checkpoint_tag
from app.schemas import CardCheckpoint, CardData, CheckpointInfo, CheckpointList, DefaultModel, ModelCard, ModelInfo
from model.checkpoint import list_checkpoints, pinned_epochs
from model.provenance import software
from model.rundir import RunDir

if TYPE_CHECKING:
    from app.schemas import MetricsSeries

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


def copy_figures(series: MetricsSeries) -> dict[int, dict[str, float | None]]:
    """{epoch: {"copy_rate", "copy_distance"}} of the epochs whose copy rate was measured."""
    return {e: {"copy_rate": r, "copy_distance": d}
            for e, r, d in zip(series.copy_epochs, series.copy_rate, series.copy_distance, strict=True)}


@router.get("/jobs/{job_id}/checkpoints", response_model=CheckpointList, responses=problems(404, 422),
            summary="The checkpoints a job keeps, with their quality and whether one is pinned or served",
            description="`swd`, `copy_rate` and `copy_distance` are null for a checkpoint whose epoch "
                        "was not measured (mid-epoch, not a snapshot epoch, swd_images 0, or a run "
                        "older than the measure).")
def list_job_checkpoints(job_id: JobId, store: StoreDep, registry: RegistryDep,
                         settings: SettingsDep) -> CheckpointList:
    run = RunDir(store.run_dir(job_id))
    if not run.root.is_dir():
        store.read(job_id)  # JobNotFound: 404
    series = metric_series(job_id, run, settings)
    swd = dict(zip(series.swd_epochs, series.swd, strict=True))
    copies = copy_figures(series)
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
        measured = ref.ends_epoch  # a mid-epoch checkpoint was never measured
        out.append(CheckpointInfo(epoch=ref.epoch, batch=ref.batch, name=ref.name, bytes=st.st_size,
                                  modified_at=st.st_mtime, swd=swd.get(ref.epoch) if measured else None,
                                  **(copies.get(ref.epoch, {}) if measured else {}),
                                  pinned=is_pinned, served=served == checkpoint_tag(job_id, ref.name)))
    return CheckpointList(job_id=job_id, checkpoints=out)


@router.get("/jobs/{job_id}/card", response_model=ModelCard, responses=problems(404, 422),
            summary="A job's model card: its data, config and quality per kept checkpoint",
            description="The data's fingerprint and counts (as the loader saw them), the training config, "
                        "and the SWD and copy rate of each kept end-of-epoch checkpoint with the best of "
                        "them (by SWD).")
def get_model_card(job_id: JobId, store: StoreDep, settings: SettingsDep) -> ModelCard:
    job = read_view(store, job_id, settings)  # JobNotFound: 404
    run = RunDir(store.run_dir(job_id))
    data = read_small_json(run.data_path)
    data = {k: data.get(k) for k in CardData.model_fields} if isinstance(data, dict) else {}
    try:
        card_data = CardData.model_validate({k: v for k, v in data.items() if v is not None})
    except ValueError:  # a data.json not of our making: say nothing rather than fail
        card_data = CardData()
    series = metric_series(job_id, run, settings)
    swd = dict(zip(series.swd_epochs, series.swd, strict=True))
    copies = copy_figures(series)
    kept = [CardCheckpoint(epoch=r.epoch, name=r.name, swd=swd.get(r.epoch), **copies.get(r.epoch, {}))
            for r in list_checkpoints(run.checkpoints) if r.ends_epoch]
    scored = [c for c in kept if c.swd is not None]
    return ModelCard(job_id=job_id, software=software(), state=str(job.state.value),
                     data=card_data, config=job.config or {}, checkpoints=kept,
                     best=min(scored, key=lambda c: c.swd) if scored else None)
