"""The layout of a run directory, the durable record of one training job.

    run_dir/
      config.json              TrainConfig + where the data came from
      fixed_noise.pt           the snapshot grid's noise (CPU-drawn from the job seed)
      reals.png                a grid of training images, to set beside the snapshots
      checkpoints/epoch-NNNN.pt
      snapshots/epoch-NNNN.png 8x8 fixed-noise grid
      metrics.jsonl            one JSON object per logged interval and per completed epoch
      data.json                how many images were used and skipped, and why
"""
from __future__ import annotations

import io
import json
import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from model.config import ConfigError, TrainConfig
from model.fsutil import NotARegularFile, atomic_write_bytes, open_regular

_SNAPSHOT = re.compile(r"^epoch-(\d{4,})\.png$")
MAX_METRIC_LINE = 64 * 1024  # bytes; a logged row is a few hundred
_COUNTS = ("epoch", "step")  # whole numbers wherever they appear
_MEASURES = ("loss_d", "loss_g", "d_x", "d_g_z", "images_per_sec", "epoch_seconds", "swd", "swd_ema",
             "copy_rate", "copy_distance")
_NEEDS = {"epoch": "epoch", "interval": "step"}  # what each kind of row is indexed by


def _row(line: bytes) -> dict[str, Any] | None:
    """A metrics line as a row, or None when it is not one of ours: not JSON (a torn last line),
    nested past the parser's depth, not an object, or with a field of the wrong type. A measure
    that is not finite (a diverged loss) is kept as None, which JSON can carry."""
    try:
        row = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(row, dict) or not isinstance(row.get("kind", ""), str):
        return None
    for key in _COUNTS:
        if key in row and (not isinstance(row[key], int) or isinstance(row[key], bool)):
            return None
    need = _NEEDS.get(row.get("kind"))
    if need is not None and need not in row:
        return None
    for key in _MEASURES:
        value = row.get(key)
        if value is None:
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return None
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an integer past any float
            finite = False
        if not finite:
            row[key] = None
    return row


def epochs_text(epochs) -> str:
    """`1-3, 5, 8`: the epochs in order, runs of consecutive ones joined; `none yet` for none.
    For messages that say which epochs a job has (a 404 for one it lacks)."""
    ordered = sorted(set(epochs))
    if not ordered:
        return "none yet"
    parts, start = [], ordered[0]
    for prev, cur in zip(ordered, [*ordered[1:], None], strict=True):
        if cur is None or cur != prev + 1:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = cur
    return ", ".join(parts)


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def fixed_noise_path(self) -> Path:
        return self.root / "fixed_noise.pt"

    @property
    def reals_path(self) -> Path:
        return self.root / "reals.png"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def snapshots(self) -> Path:
        return self.root / "snapshots"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def data_path(self) -> Path:
        return self.root / "data.json"

    def snapshot_path(self, epoch: int) -> Path:
        return self.snapshots / f"epoch-{epoch:04d}.png"

    def snapshot_epochs(self) -> list[int]:
        try:  # the job may be deleted while it is listed
            names = os.listdir(self.snapshots)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(int(m.group(1)) for name in names if (m := _SNAPSHOT.match(name)))

    # -- config.json ------------------------------------------------------------------------
    def read_config(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.config_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.config_path} is unreadable ({exc})") from None

    def write_config(self, cfg: TrainConfig, data_dir: str | None) -> None:
        body = {"train": cfg.to_dict(), "data_dir": data_dir}
        atomic_write_bytes(self.config_path, json.dumps(body, indent=2, sort_keys=True).encode())

    # -- metrics.jsonl ----------------------------------------------------------------------
    def read_metrics(self, max_rows: int | None = None) -> list[dict[str, Any]]:
        """The logged rows, oldest first; a torn last line (a crash mid-append) is ignored.

        With `max_rows`, a very long log is thinned as it is read, line by line (memory stays
        bounded whatever the file's size): at most `max_rows` evenly spaced interval rows and as
        many epoch rows, plus every epoch row that carries an SWD or copy-rate measurement.
        """
        if max_rows is None:
            return list(self._rows())
        kept: dict[str, _Thinned] = {"interval": _Thinned(max_rows), "epoch": _Thinned(max_rows)}
        measured = []
        for row in self._rows():
            if row.get("kind") == "epoch" and (row.get("swd") is not None or row.get("copy_rate") is not None):
                measured.append(row)
            elif row.get("kind") in kept:
                kept[row["kind"]].add(row)
        epochs = sorted(kept["epoch"].rows() + measured, key=lambda r: r.get("step", 0))
        return epochs + kept["interval"].rows()

    def measured_epochs(self) -> dict[int, float]:
        """{epoch: SWD} of every epoch row that carries a measurement: the sampled G's (the EMA
        G's where kept, else the raw G's); a later row of an epoch replaces an earlier one. The
        epochs whose checkpoints training keeps, and the candidates for the best-SWD model."""
        out: dict[int, float] = {}
        for row in self.read_metrics(max_rows=1):  # thinning keeps every measured row
            value, epoch = row.get("swd_ema", row.get("swd")), row.get("epoch")
            if row.get("kind") == "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and math.isfinite(value) and isinstance(epoch, int) and not isinstance(epoch, bool):
                out[epoch] = float(value)
        return out

    def _rows(self) -> Iterator[dict[str, Any]]:
        """Each line that is a row of ours; a line over MAX_METRIC_LINE bytes is skipped a chunk
        at a time (never held whole), and so is one that is not JSON or not a row (see _row)."""
        try:
            with open_regular(self.metrics_path) as f:
                while line := f.readline(MAX_METRIC_LINE + 1):
                    if len(line) > MAX_METRIC_LINE and not line.endswith(b"\n"):
                        while (rest := f.readline(MAX_METRIC_LINE)) and not rest.endswith(b"\n"):
                            pass
                        continue
                    row = _row(line)
                    if row is not None:
                        yield row
        except (FileNotFoundError, NotADirectoryError, NotARegularFile):
            return

    def append_metrics(self, row: dict[str, Any]) -> None:
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row, separators=(",", ":")) + "\n")

    def truncate_metrics(self, last_step: int) -> None:
        """Drop lines logged after `last_step`: training resumes from a checkpoint at that step
        and will log them again."""
        rows = self.read_metrics()
        kept = [r for r in rows if r.get("step", 0) <= last_step]
        if len(kept) != len(rows) or (self.metrics_path.exists() and not rows):
            atomic_write_bytes(self.metrics_path,
                               "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in kept).encode())

    # -- fixed_noise.pt ---------------------------------------------------------------------
    def load_or_create_fixed_noise(self, make: Callable[[], torch.Tensor]) -> torch.Tensor:
        if self.fixed_noise_path.exists():
            try:
                return torch.load(self.fixed_noise_path, weights_only=True)
            except Exception:
                pass  # a torn write: it is a pure function of the seed, so draw it again
        noise = make()
        buf = io.BytesIO()
        torch.save(noise, buf)
        atomic_write_bytes(self.fixed_noise_path, buf.getvalue())
        return noise


class _Thinned:
    """Keeps every stride-th row added, doubling the stride whenever twice `limit` rows are
    kept, so the rows kept stay evenly spaced and fewer than 2 * limit; `rows()` trims to limit."""

    def __init__(self, limit: int) -> None:
        self.limit, self.stride, self.seen = max(limit, 1), 1, 0
        self._rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        if self.seen % self.stride == 0:
            self._rows.append(row)
            if len(self._rows) >= 2 * self.limit:
                self._rows = self._rows[::2]
                self.stride *= 2
        self.seen += 1

    def rows(self) -> list[dict[str, Any]]:
        step = max(1, -(-len(self._rows) // self.limit))  # ceil: at most `limit` rows
        return self._rows[::step]
