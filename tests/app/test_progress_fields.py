"""A job's progress is defined once (model/progress.py): the record, the API's Job and the
metrics are made from it, so every field declared there reaches all three."""
from __future__ import annotations

import dataclasses
import typing

from app.jobs_api import job_view
from app.observability import Metrics
from app.schemas import Job
from model.progress import TrainProgress, job_fields
from tests.helpers import tiny_job_config
from worker import lifecycle
from worker.records import JobRecord, SyntheticData
from worker.store import JobStore

JOB = "20260101-000000-abcdef"


def _value(kind, i: int):
    """A value of its own for field i, of its type (float | None, str | None, int)."""
    types = set(typing.get_args(kind)) or {kind}
    return i + 1 if int in types else f"value-{i}" if str in types else i + 0.5


def test_every_progress_field_a_job_keeps_reaches_its_record_the_api_and_its_metric(tmp_path) -> None:
    declared = [f for f in dataclasses.fields(TrainProgress) if "job" in f.metadata]
    names = {f.name: f.metadata["job"] or f.name for f in declared}  # report's name -> job's
    assert set(names.values()) == {f.name for f in job_fields()} >= {
        "phase", "epoch", "step", "loss_d", "loss_g", "d_x", "d_g_z", "images_per_sec", "eta_seconds",
        "checkpoint", "swd", "decoded", "files"}
    hints = {f.name: f.kind for f in job_fields()}
    training = {attr: _value(hints[job], i) for i, (attr, job) in enumerate(names.items())
                if job not in ("phase", "decoded", "files")}
    store = JobStore(tmp_path)
    rec = lifecycle.start(store.create(lifecycle.queue(JOB, tiny_job_config(epochs=40),
                                                       SyntheticData(synthetic_images=64))), "host:1", 3)
    rec = lifecycle.report(lifecycle.report(rec, TrainProgress("data", 0, 40, decoded=7, files=9)),
                           TrainProgress("train", epochs=40, **training))
    store.update(JOB, lambda _old: rec)
    rec = store.read(JOB)
    assert isinstance(rec, JobRecord) and (rec.phase, rec.decoded, rec.files) == ("train", 7, 9)
    shown = job_view(store, rec)
    for attr, value in training.items():
        assert getattr(rec, names[attr]) == value and getattr(shown, names[attr]) == value, attr
    assert "decoded" not in Job.model_fields and "files" not in Job.model_fields  # never shown by the API

    scraped = {m.name: m.samples for m in Metrics(store).registry.collect()}
    metrics = [f for f in job_fields() if f.metric]
    assert [f.name for f in metrics] == ["images_per_sec"]
    for f in metrics:
        assert [(s.labels, s.value) for s in scraped[f.metric[0]]] == [({"job_id": JOB}, getattr(rec, f.name))]
