"""The job record: one typed document per job, `RUNS_DIR/<job_id>/job.json`.

It is the only truth about a job (broker messages are just wake-ups). Every field a reader may
see is declared here; the states are declared here once; lifecycle.py holds the transitions.
"""
from __future__ import annotations

import re
import secrets
import time
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Literal, Optional, Union, get_origin

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from model.config import ConfigError, TrainConfig
from model.progress import JobField, job_fields

JOB_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")


class JobState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # Never written: how a job.json that is unreadable or invalid is shown (its `error` says why).
    DAMAGED = "damaged"


ACTIVE = frozenset({JobState.QUEUED, JobState.RUNNING})
TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


def new_job_id() -> str:
    """Sortable by creation time, unguessable enough, and safe as a folder name."""
    return f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def now() -> float:
    return round(time.time(), 3)


class SyntheticData(BaseModel):
    """Procedural faces (model/synth.py), written once per (count, seed) and shared by jobs."""
    model_config = ConfigDict(extra="forbid")
    dataset: Literal["synthetic"] = "synthetic"
    synthetic_images: int = Field(ge=1)
    synthetic_seed: int = Field(0, ge=0)


class FolderData(BaseModel):
    """A folder relative to DATA_ROOT."""
    model_config = ConfigDict(extra="forbid")
    data_dir: str = Field(min_length=1, max_length=4096)


DataSource = Union[SyntheticData, FolderData]


class DatasetInfo(BaseModel):
    """What the loader made of the data: usable images and what was skipped, and why."""
    images: int
    files_found: int
    skipped: int
    skipped_by_reason: dict[str, int]
    skipped_examples: list[list[str]] = []


class _JobRecordBase(BaseModel):
    # Unknown fields (from a newer version) are ignored rather than fatal.
    model_config = ConfigDict(extra="ignore")

    job_id: str = Field(pattern=JOB_ID.pattern)
    state: JobState
    config: dict[str, Any]  # a TrainConfig, as TrainConfig.to_dict() writes it
    data: DataSource
    epochs: int = Field(ge=1)  # epochs the job is to reach (grows when it is extended)
    created_at: float
    updated_at: float
    started_at: Optional[float] = None
    finished_at: Optional[float] = None
    attempts: int = Field(0, ge=0)  # times a worker started (or resumed) it
    crashes: int = Field(0, ge=0)  # times its worker died under it (max_attempts of these fail it)
    worker: Optional[str] = None  # host:pid of the process training it
    error: Optional[str] = None
    warning: Optional[str] = None
    needs_enqueue: bool = False  # queued, but its wake-up message may not be on the queue
    cancel_requested: bool = False
    dataset: Optional[DatasetInfo] = None

    @field_validator("config")
    @classmethod
    def _a_train_config(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            return TrainConfig.from_dict(value).to_dict()
        except ConfigError as exc:
            raise ValueError(f"config: {exc}") from None

    def train_config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.config)


def progress_field(f: JobField) -> tuple[Any, Any]:
    """A pydantic (type, default) for a field a job keeps of its reports (model/progress.py):
    a count starts at 0 and is never negative; anything else is None until first reported."""
    if f.kind is int:
        return int, Field(0, ge=0)
    # a phase is any string here: a record written by a newer version may name one we do not know
    return Optional[str if get_origin(f.kind) is Literal else f.kind], None


# The record: the fields above, then the progress as model.train last reported it, one field
# per `_job` field of model.progress.TrainProgress (lifecycle.report copies them).
JobRecord = create_model("JobRecord", __base__=_JobRecordBase, __module__=__name__,
                         **{f.name: progress_field(f) for f in job_fields()})


class DamagedRecord(BaseModel):
    """Stands in for a job.json that cannot be read as a JobRecord, so one bad file is shown
    (and can be deleted) instead of breaking every listing."""
    job_id: str
    state: Literal[JobState.DAMAGED] = JobState.DAMAGED
    error: str
    updated_at: float
