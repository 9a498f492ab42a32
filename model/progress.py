"""What `model.train` reports while it runs, and the meter that averages the numbers it reports.

The CLI's progress bars and the worker's job record both read `TrainProgress` as it is, so
"how many epochs are done" is worked out once, here, and never re-derived from a row. Its
fields marked `_job` are the one definition of a job's progress (`job_fields()`).
"""
from __future__ import annotations

import math
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import torch

Phase = Literal["data", "train", "done", "stopped"]
_REQUIRED = object()  # a `_job` field without a default


def _job(name: str | None = None, *, when: str = "train", metric: tuple[str, str] | None = None,
         default: Any = None) -> Any:
    """A report field that a job keeps (its record, the API's Job, the gallery): under `name`
    (default: its own), from reports of the `when` phase ("data": decoding; "train": every
    other; "always"), and where `metric` = (name, help) also a Prometheus gauge per running job."""
    meta = {"job": name, "when": when, "metric": metric}
    return field(metadata=meta) if default is _REQUIRED else field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainProgress:
    """One report. The fields declared with `_job` are what a job keeps of it: the job record
    (worker/records.py), the API's Job (app/schemas.py) and the metrics (app/observability.py)
    are made from them, so a new one is one line here (plus where it is displayed)."""
    phase: Phase = _job(when="always", default=_REQUIRED)  # decoding the images, training, finished, or stopped early
    epochs_done: int = _job("epoch", default=_REQUIRED)  # completed epochs
    epochs: int  # epochs the run is asked to reach
    step: int = _job(default=0)  # batches trained in total
    batch: int = 0  # batches done of the epoch in progress (0 right after an epoch ends)
    batches_per_epoch: int = 0
    epoch_end: bool = False  # this report closes an epoch: its snapshot and checkpoint are written
    loss_d: float | None = _job()  # means over the window the report covers
    loss_g: float | None = _job()
    d_x: float | None = _job()  # D's mean probability for real images
    d_g_z: float | None = _job()  # ... and for generated ones
    images_per_sec: float | None = _job(metric=("dcgan_training_images_per_second", "training throughput"))
    eta_seconds: float | None = _job()
    checkpoint: str | None = _job()  # file name of the newest checkpoint, once there is one
    swd: float | None = _job()  # quality at this epoch, when measured
    copy_rate: float | None = _job()  # share of the snapshot's faces that copy a training image (model/nearest.py)
    decoded: int | None = _job(when="data")  # data phase: images decoded so far ...
    files: int | None = _job(when="data")  # ... of this many files
    warning: str | None = None  # something a person should know (a damaged checkpoint skipped)
    data: dict | None = None  # once, when decoding is over and training begins: ImageDataset.summary()

    def for_job(self) -> dict[str, Any]:
        """What a job's record takes from this report, by the record's names: the fields of
        this report's phase that it carries (a field left None is no news)."""
        phase = "data" if self.phase == "data" else "train"
        return {f.metadata["job"] or f.name: getattr(self, f.name) for f in fields(self)
                if f.metadata.get("when") in ("always", phase) and getattr(self, f.name) is not None}


@dataclass(frozen=True)
class JobField:
    """A field a job keeps of its reports (see `_job`): its name there, its type in the report
    (None allowed there or not), the phase it comes from and its metric, if any."""
    name: str
    kind: Any
    when: str
    metric: tuple[str, str] | None


def job_fields() -> list[JobField]:
    """The fields a job keeps of its reports, in the report's order."""
    hints = typing.get_type_hints(TrainProgress)
    return [JobField(f.metadata["job"] or f.name, hints[f.name], f.metadata["when"], f.metadata["metric"])
            for f in fields(TrainProgress) if "job" in f.metadata]


ProgressFn = Callable[[TrainProgress], None]

INTERVAL, EPOCH = 0, 1  # the meter's two windows


def _finite(v: float) -> float | None:
    return round(v, 6) if math.isfinite(v) else None


class Meter:
    """Running means of D's loss, D(x), D(G(z)) and G's loss, and images per second, over two
    windows at once: since the last log line (INTERVAL) and since the epoch began (EPOCH).

    Sums stay on the training device; a `take` is the only host read, so logging never stalls
    the GPU between log lines.
    """

    def __init__(self, device: torch.device, step: int, batch_size: int) -> None:
        self.batch_size = batch_size
        self._sums = torch.zeros(2, 4, device=device)
        self._counts = [[0, 0], [0, 0]]  # per window: D steps, G steps
        now = time.perf_counter()
        self._start = [now, now]
        self._first_step = [step, step]

    def add_d(self, stats: torch.Tensor) -> None:
        """stats = [loss_d, d_x, d_g_z] of one D step."""
        self._sums[:, :3] += stats
        for c in self._counts:
            c[0] += 1

    def add_g(self, loss: torch.Tensor) -> None:
        self._sums[:, 3] += loss
        for c in self._counts:
            c[1] += 1

    def take(self, window: int, step: int) -> tuple[dict[str, float | None], float]:
        """Means and images/s of `window` up to `step`, and the seconds it covered; then start
        that window afresh."""
        sums = self._sums[window].tolist()  # waits for the device's queued work: time it after
        now = time.perf_counter()
        seconds = now - self._start[window]
        nd, ng = self._counts[window]
        images = (step - self._first_step[window]) * self.batch_size
        out = {"loss_d": _finite(sums[0] / nd) if nd else None,
               "d_x": _finite(sums[1] / nd) if nd else None,
               "d_g_z": _finite(sums[2] / nd) if nd else None,
               "loss_g": _finite(sums[3] / ng) if ng else None,
               "images_per_sec": round(images / max(seconds, 1e-9), 1)}
        self._sums[window].zero_()
        self._counts[window] = [0, 0]
        self._start[window], self._first_step[window] = now, step
        return out, seconds

    def exclude(self, seconds: float) -> None:
        """Leave time that was not training (snapshots, SWD, checkpoints) out of both windows."""
        self._start[INTERVAL] += seconds
        self._start[EPOCH] += seconds
