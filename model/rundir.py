"""The layout of a run directory, the durable record of one training job.

    run_dir/
      config.json              TrainConfig + where the data came from
      fixed_noise.pt           the snapshot grid's noise (CPU-drawn from the job seed)
      checkpoints/epoch-NNNN.pt
      snapshots/epoch-NNNN.png 8x8 fixed-noise grid
      metrics.jsonl            one JSON object per logged interval and per completed epoch
      data.json                how many images were used and skipped, and why
"""
from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from model.config import ConfigError, TrainConfig
from model.fsutil import atomic_write_bytes

_SNAPSHOT = re.compile(r"^epoch-(\d{4,})\.png$")


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
        if not self.snapshots.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.snapshots.iterdir()
                      if (m := _SNAPSHOT.match(p.name)))

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
    def read_metrics(self) -> list[dict[str, Any]]:
        """All complete lines; a torn last line (a crash mid-append) is ignored."""
        out = []
        try:
            with open(self.metrics_path, encoding="utf-8") as f:
                for line in f:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        continue
        except FileNotFoundError:
            pass
        return out

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
