"""Request and response models. The training request is generated from model.config.TrainConfig,
so its defaults and bounds are the model's, never a second copy."""
from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from model.config import TrainConfig, field_kind

_DEFAULTS = TrainConfig()


def _train_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(TrainConfig):
        kind = field_kind(f.name)
        meta = {k: f.metadata[k] for k in ("ge", "le", "gt") if f.metadata.get(k) is not None}
        default = getattr(_DEFAULTS, f.name)
        if kind is tuple:
            ann: Any = list[Annotated[int, Field(strict=True, ge=1, le=100_000)]]
            fld = Field(default=list(default), description=f.metadata["help"], min_length=1, max_length=1000)
        else:
            ann = {int: int, float: float, bool: bool}[kind]
            fld = Field(default=default, description=f.metadata["help"], strict=kind is not float, **meta)
        fields[f.name] = (ann, fld)
    return fields


_TrainFields = create_model("_TrainFields", __config__=ConfigDict(extra="forbid"), **_train_fields())


class TrainRequest(_TrainFields):  # type: ignore[misc, valid-type]
    """Any TrainConfig field (the seed's value when left out) plus where the images come from:
    `data_dir`, a folder relative to DATA_ROOT, or `"dataset": "synthetic"`."""
    data_dir: Optional[str] = Field(None, max_length=1024, description="folder under DATA_ROOT")
    dataset: Optional[Literal["synthetic"]] = Field(None, description="train on procedural faces")
    synthetic_images: int = Field(2048, ge=16, le=1_000_000, strict=True,
                                  description="images in the synthetic dataset")
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"dataset": "synthetic", "synthetic_images": 1024, "epochs": 10, "ngf": 32,
                      "ndf": 32, "batch_size": 64},
                     {"data_dir": "anime-faces"}]})

    @model_validator(mode="after")
    def _one_source(self) -> "TrainRequest":
        if (self.data_dir is None) == (self.dataset is None):
            raise ValueError("give exactly one of data_dir (a folder under DATA_ROOT) or "
                             "dataset: \"synthetic\"")
        try:
            self.train_config()
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        return self

    def train_config(self) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        return TrainConfig.from_dict({k: v for k, v in self.model_dump().items() if k in names})


class Accepted(BaseModel):
    job_id: str
    status_url: str


class DatasetInfo(BaseModel):
    images: int
    files_found: int
    skipped: int
    skipped_by_reason: dict[str, int]
    skipped_examples: list[list[str]] = []


class Job(BaseModel):
    job_id: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    phase: Optional[str] = None
    epoch: int = 0
    epochs: int
    step: int = 0
    loss_d: Optional[float] = None
    loss_g: Optional[float] = None
    d_x: Optional[float] = None
    d_g_z: Optional[float] = None
    swd: Optional[float] = None
    images_per_sec: Optional[float] = None
    eta_seconds: Optional[float] = None
    error: Optional[str] = None
    warning: Optional[str] = None
    config: dict[str, Any]
    data: dict[str, Any]
    dataset: Optional[DatasetInfo] = None
    snapshots: list[int]
    checkpoint: Optional[str] = None
    attempts: int = 0
    created_at: float
    updated_at: float
    started_at: Optional[float] = None
    finished_at: Optional[float] = None


class JobList(BaseModel):
    jobs: list[Job]


class MetricsSeries(BaseModel):
    """Per-epoch series (index i of every list belongs to epochs[i]) and the interval points."""
    job_id: str
    epochs: list[int]
    loss_d: list[Optional[float]]
    loss_g: list[Optional[float]]
    d_x: list[Optional[float]]
    d_g_z: list[Optional[float]]
    images_per_sec: list[Optional[float]]
    epoch_seconds: list[Optional[float]]
    swd_epochs: list[int]
    swd: list[float]
    steps: list[int]
    step_loss_d: list[Optional[float]]
    step_loss_g: list[Optional[float]]


class DefaultModel(BaseModel):
    job_id: str = Field(..., max_length=64)
    epoch: Optional[int] = Field(None, ge=1, le=100_000, description="newest checkpoint when left out")
    model_config = ConfigDict(extra="forbid")


class ModelInfo(BaseModel):
    job_id: str
    checkpoint: str
    epoch: int
    pinned: bool


class Problem(BaseModel):
    """Every error answer: what went wrong and what to do."""
    detail: Any


class Health(BaseModel):
    status: str
    model: Optional[ModelInfo] = None
    problems: list[str] = []
    mode: Optional[str] = None
