"""Optional TensorBoard logging of a training run: each epoch's scalars and snapshot grid under
RUN/tb/, for `tensorboard --logdir RUN/tb`.

On when `tensorboard` is installed (`pip install 'dcgan-faces[tensorboard]'`) unless the
environment sets DCGAN_TENSORBOARD=0; otherwise every call does nothing. TensorBoard is a
convenience: a failure to write is logged once and ends the logging, never the training.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

ENV = "DCGAN_TENSORBOARD"
FOLDER = "tb"
# epoch-row key (metrics.jsonl) -> TensorBoard tag
SCALARS = {
    "loss_d": "loss/D", "loss_g": "loss/G", "d_x": "D/D(x)", "d_g_z": "D/D(G(z))",
    "images_per_sec": "speed/images_per_sec", "epoch_seconds": "speed/epoch_seconds",
    "swd": "quality/swd", "swd_ema": "quality/swd_ema", "copy_rate": "quality/copy_rate",
}
SNAPSHOT_TAG = "snapshot/fixed_noise"


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


class TensorBoardLog:
    """Writes through a SummaryWriter, or does nothing when there is none."""

    def __init__(self, writer: Any = None) -> None:
        self._writer = writer

    @property
    def active(self) -> bool:
        return self._writer is not None

    def epoch(self, row: dict[str, Any], step: int, snapshot: Path | None = None) -> None:
        """One epoch's scalars (those of `row` that are numbers) and its snapshot grid (a PNG
        file), at global step `step` (batches trained: a resumed run continues the curves)."""
        if self._writer is None:
            return
        try:
            for key, tag in SCALARS.items():
                value = row.get(key)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._writer.add_scalar(tag, value, step)
            if snapshot is not None:
                with Image.open(snapshot) as im:
                    grid = np.asarray(im.convert("RGB"))
                self._writer.add_image(SNAPSHOT_TAG, grid, step, dataformats="HWC")
            self._writer.flush()  # someone may be watching the run live
        except Exception as exc:  # disk full, a removed folder...: training goes on without it
            log.warning("TensorBoard logging stopped: %s", exc)
            self.close()

    def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception as exc:
                log.warning("TensorBoard writer did not close cleanly: %s", exc)


def open_log(run_dir: Path) -> TensorBoardLog:
    """A log writing to run_dir/tb/ when TensorBoard is installed and enabled, else a no-op one."""
    if not enabled():
        return TensorBoardLog()
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return TensorBoardLog()
    try:
        return TensorBoardLog(SummaryWriter(log_dir=str(Path(run_dir) / FOLDER)))
    except Exception as exc:
        log.warning("TensorBoard logging is off: %s", exc)
        return TensorBoardLog()
