"""Request and response models. The training request is generated from model.config.TrainConfig,
so its defaults and bounds are the model's, never a second copy."""
from __future__ import annotations

import dataclasses
import functools
import re
from typing import Annotated, Any, ClassVar, Literal, Optional

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model, field_validator, model_validator

from app.settings import Settings
from model.config import TrainConfig, field_kind
from model.nearest import COPY_METRIC
from model.presets import PRESETS, resolve
from model.progress import job_fields
from worker.records import DatasetInfo, JobState, progress_field

_DEFAULTS = TrainConfig()
# A relative path of plain names: no leading '/', no '.' or '..' or hidden parts, no '\\' or NUL.
DATA_DIR_PATTERN = r"^[^/\\\x00.][^/\\\x00]*(/[^/\\\x00.][^/\\\x00]*)*/?$"


def _integral_float_to_int(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def json_int(**bounds: int) -> Any:
    """JSON's idea of an integer: 16 and 16.0 are, "16" and 16.5 are not (pydantic's strict int
    refuses 16.0, its lax int takes "16")."""
    return Annotated[int, Field(strict=True, **bounds), BeforeValidator(_integral_float_to_int)]


JsonInt = json_int()


def _written_as_integer(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(r"-?[0-9]+", value):
        raise ValueError("should be a whole number written with digits only (no decimal point or exponent)")
    return value


# For int query and path parameters: "16", not "16.0" (pydantic's lax int reads the text "16.0"
# as 16 but refuses "16.5"; a client that sends a float for an integer has a bug to hear about).
WrittenAsInteger = BeforeValidator(_written_as_integer)


def _train_field(f: dataclasses.Field, cap: int | None = None) -> tuple[Any, Any]:
    """A TrainConfig field as a request field: its default, help and bounds (`cap` lowers its
    upper bound)."""
    kind = field_kind(f.name)
    meta = {k: f.metadata[k] for k in ("ge", "le", "gt") if f.metadata.get(k) is not None}
    if cap is not None:
        meta["le"] = min(meta["le"], cap)
    default = getattr(_DEFAULTS, f.name)
    if kind is tuple:
        return list[json_int(ge=1, le=100_000)], Field(default=list(default), description=f.metadata["help"],
                                                       min_length=1, max_length=1000)
    if kind is str:
        return Literal[tuple(f.metadata["choices"])], Field(default=default, description=f.metadata["help"])
    ann = {int: JsonInt, float: float, bool: bool}[kind]
    return ann, Field(default=default, description=f.metadata["help"], strict=True, **meta)


def _synthetic_images(cap: int | None = None) -> tuple[Any, Any]:
    return JsonInt, Field(2048, ge=16, le=cap, description="images in the synthetic dataset")


def _no_default(**extra: Any):
    """For optional fields without a JSON default (null is not a valid value for them)."""
    def edit(schema: dict[str, Any]) -> None:
        schema.pop("default", None)
        schema.update(extra)
    return edit


_TrainFields = create_model("_TrainFields", __config__=ConfigDict(extra="forbid"),
                            **{f.name: _train_field(f) for f in dataclasses.fields(TrainConfig)})


class TrainRequest(_TrainFields):  # type: ignore[misc, valid-type]
    """Any TrainConfig field (the seed's value when left out) plus where the images come from:
    exactly one of `data_dir`, a folder relative to DATA_ROOT, or `"dataset": "synthetic"`.
    A server takes the subclass `train_request(settings)` makes, with its caps."""
    caps: ClassVar[dict[str, int]] = {}  # this server's tighter bounds on some fields (policy)
    data_dir: str = Field(None, min_length=1, max_length=1024, description="folder under DATA_ROOT",
                          json_schema_extra=_no_default(pattern=DATA_DIR_PATTERN))
    dataset: Literal["synthetic"] = Field(None, description="train on procedural faces",
                                          json_schema_extra=_no_default())
    synthetic_images: JsonInt = _synthetic_images()[1]
    preset: Literal[tuple(PRESETS)] = Field(
        None, description="a named set of the fields above (" + "; ".join(
            f"{k}: {v.summary}" for k, v in PRESETS.items()) + "); fields given as well override it",
        json_schema_extra=_no_default())
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "oneOf": [{"title": "your images (data_dir)", "required": ["data_dir"]},
                  {"title": "synthetic faces (dataset)", "required": ["dataset"]}],
        "examples": [{"dataset": "synthetic", "synthetic_images": 1024, "epochs": 10, "ngf": 32,
                      "ndf": 32, "batch_size": 64}]})

    @model_validator(mode="before")
    @classmethod
    def _renamed_fields(cls, data: Any) -> Any:
        if isinstance(data, dict) and "amp" in data:
            raise ValueError('amp was replaced by precision: "bf16" (what amp true did on CUDA), "fp32" '
                             '(amp false) or "auto" (bf16 on CUDA, fp32 on the CPU)')
        return data

    @field_validator("data_dir")
    @classmethod
    def _plain_relative_path(cls, value: str) -> str:
        """The same rule as DATA_DIR_PATTERN, with a message that says which part is wrong."""
        if "\x00" in value or "\\" in value:
            raise ValueError("data_dir must be a plain relative path (no NUL or backslash)")
        if value.startswith("/"):
            raise ValueError("data_dir must be relative to DATA_ROOT, not absolute")
        parts = value[:-1].split("/") if value.endswith("/") else value.split("/")
        if any(not p or p.startswith(".") for p in parts):
            raise ValueError("each part of data_dir must be a plain folder name: no '..', '.', "
                             "hidden folders or empty parts")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> TrainRequest:
        if (self.data_dir is None) == (self.dataset is None):
            raise ValueError("give exactly one of data_dir (a folder under DATA_ROOT) or "
                             "dataset: \"synthetic\"")
        return self

    @model_validator(mode="after")
    def _preset_within_caps(self) -> TrainRequest:
        """A preset's values meet this server's caps too (they do at the default caps)."""
        if self.preset is not None:
            for name, value in PRESETS[self.preset].values.items():
                cap = self.caps.get(name)
                if cap is not None and name not in self.model_fields_set and value > cap:
                    raise ValueError(f"preset {self.preset} sets {name} {value}, above this server's "
                                     f"limit {cap}; give a smaller {name} as well")
        return self

    def train_config(self) -> TrainConfig:
        """The preset's values (if any), then the fields the request gave; the rest the seed's."""
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        given = {k: v for k, v in self.model_dump().items() if k in names and k in self.model_fields_set}
        return resolve(self.preset, given)


def train_request(settings: Settings) -> type[TrainRequest]:
    """POST /train's body for a server with these settings: its caps are the schema's bounds."""
    return _capped_request(settings.max_batch_size, settings.max_width, settings.max_synthetic_images)


@functools.lru_cache(maxsize=8)
def _capped_request(max_batch_size: int, max_width: int, max_synthetic_images: int) -> type[TrainRequest]:
    caps = {"batch_size": max_batch_size, "ngf": max_width, "ndf": max_width}
    fields = {f.name: _train_field(f, caps[f.name]) for f in dataclasses.fields(TrainConfig) if f.name in caps}
    model = create_model("TrainRequest", __base__=TrainRequest, __doc__=TrainRequest.__doc__,
                         synthetic_images=_synthetic_images(max_synthetic_images), **fields)
    model.caps = caps
    return model


class Accepted(BaseModel):
    job_id: str
    status_url: str
    epochs: int = Field(description="epochs the job will train")
    images: int = Field(description="images per epoch: the synthetic set's size, or the image files "
                                    "found in data_dir (capped by max_images)")
    batch_size: int
    steps_per_epoch: int = Field(description="images // batch_size (a last partial batch is dropped)")
    steps: int = Field(description="epochs × steps_per_epoch: the generator updates it will make "
                                   "(the progress bar's and the ETA's count)")
    exact: bool = Field(description="false for a folder: files that do not decode are skipped, so "
                                    "images and steps are at most these")


class _JobBase(BaseModel):
    job_id: str
    state: JobState
    epochs: int = 0
    error: Optional[str] = None
    warning: Optional[str] = None
    config: Optional[dict[str, Any]] = None
    data: Optional[dict[str, Any]] = None
    dataset: Optional[DatasetInfo] = None  # what decoding made of the files: set when it ends, while training
    snapshots: list[int] = []
    attempts: int = 0  # times a worker started (or resumed) it
    crashes: int = 0  # times its worker died under it (MAX_ATTEMPTS of these fail it)
    worker: Optional[str] = None  # host:pid of the process training it (shown with the token)
    created_at: Optional[float] = None
    updated_at: float
    started_at: Optional[float] = None
    finished_at: Optional[float] = None


# The progress fields are the record's (model/progress.py's `_job` fields) but the decoding
# count, which the API never showed.
Job = create_model("Job", __base__=_JobBase, __module__=__name__,
                   __doc__="A job as readers see it: its record plus the snapshot epochs on disk. A record "
                           "that cannot be read is `damaged`, with the reason in `error`.",
                   **{f.name: progress_field(f) for f in job_fields() if f.when != "data"})


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
    copy_epochs: list[int] = []  # the snapshot epochs whose copy rate was measured
    copy_rate: list[float] = []  # share of the snapshot's faces closer to a training image than copy_distance
    copy_distance: list[Optional[float]] = []  # that distance (model/nearest.py: half the real-to-real median)
    steps: list[int]
    step_loss_d: list[Optional[float]]
    step_loss_g: list[Optional[float]]
    step_d_x: list[Optional[float]] = []
    step_d_g_z: list[Optional[float]] = []


class DefaultModel(BaseModel):
    job_id: str = Field(..., max_length=64)
    epoch: Optional[json_int(ge=1, le=100_000)] = Field(None, description="newest checkpoint when left out")
    model_config = ConfigDict(extra="forbid")


class ModelInfo(BaseModel):
    """Which checkpoint answers: the job, the file, its epoch, whether it was pinned, and why it
    is the one (app/default_model.py)."""
    job_id: str
    checkpoint: str
    epoch: int
    pinned: bool
    reason: str = ""
    swd: Optional[float] = None  # its SWD, when that is why it serves


class CheckpointInfo(BaseModel):
    epoch: int  # completed epochs
    batch: int  # batches of the next epoch (0: an end-of-epoch checkpoint)
    name: str
    bytes: int
    modified_at: float
    swd: Optional[float] = None  # quality at that epoch, when it was measured
    copy_rate: Optional[float] = None  # share of that epoch's snapshot faces that copy a training image
    copy_distance: Optional[float] = None  # the distance under which a face counted as a copy
    pinned: bool  # kept whatever the pruning: the pinned default model
    served: bool  # what /generate answers with when no job is named


class CheckpointList(BaseModel):
    job_id: str
    checkpoints: list[CheckpointInfo]


class CardData(BaseModel):
    """The training data as the loader saw it (data.json), without file names."""
    fingerprint: Optional[str] = None  # of the decoded dataset: same fingerprint, same images
    images: Optional[int] = None
    files_found: Optional[int] = None
    skipped: Optional[int] = None
    skipped_by_reason: dict[str, int] = {}


class CardCheckpoint(BaseModel):
    epoch: int
    name: str
    swd: Optional[float] = None
    copy_rate: Optional[float] = None
    copy_distance: Optional[float] = None


class ModelCard(BaseModel):
    """What a job's model is: its data, config, and quality per kept checkpoint."""
    job_id: str
    software: str  # the project and version serving the card
    state: str
    data: CardData
    config: dict[str, Any]
    checkpoints: list[CardCheckpoint]  # end-of-epoch checkpoints kept, oldest first
    best: Optional[CardCheckpoint] = None  # the kept checkpoint with the lowest SWD
    swd_metric: str = "sliced Wasserstein distance (lower is better), see docs/training.md"
    copy_metric: str = COPY_METRIC


class ResumeRequest(BaseModel):
    """Optional body of POST /jobs/{id}/resume."""
    epochs: Optional[json_int(ge=1, le=100_000)] = Field(
        None, description="extend the job to this many epochs (more than it has)")
    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """Every error answer: what went wrong and what to do."""
    detail: Any


class Health(BaseModel):
    status: str
    model: Optional[ModelInfo] = None
    problems: list[str] = []
    mode: Optional[str] = None


class DirectionInfo(BaseModel):
    index: int = Field(description="the K of edit=K:AMOUNT")
    variance: float = Field(description="its share of the early features' variance (0 to 1)")
    scale: float = Field(description="the noise's standard deviation along it: AMOUNT 1 moves this far")


class DirectionsInfo(BaseModel):
    """A checkpoint's latent directions, most variance first (model/directions.py)."""
    job_id: str
    checkpoint: str
    epoch: int
    checksum: str  # of the generator weights they were computed from
    directions: list[DirectionInfo]
    samples: int  # noise vectors the PCA saw
    features: str  # which activations of G
    max_amount: float  # |AMOUNT| allowed per edit
    max_edits: int  # edits allowed per request


class Projected(BaseModel):
    """What POST /project found: a latent whose face reproduces the picture, and how closely."""
    latent: str = Field(description="its ID: use it as latent=ID in /generate, /nearest and /interpolate")
    psnr: float = Field(description="dB, the projected face against the picture as cropped and resized to "
                                    "the model's size (20 dB and more: a close likeness)")
    job_id: str
    epoch: int
    checkpoint: str = Field(description="job_id/epoch-NNNN.pt, the checkpoint it was projected on")
    checkpoint_checksum: Optional[str] = None
    steps: int = Field(description="optimiser steps taken")
    seconds: float
    stopped: Literal["steps", "time"] = Field(description="which bound ended it: PROJECT_STEPS or PROJECT_SECONDS")
    url: str = Field(description="the face: /generate?latent=ID&n=1")
    nearest_url: str = Field(description="its nearest training images: /nearest?latent=ID")
