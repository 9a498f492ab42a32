"""Small builders the tests share (imported as `tests.helpers`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from model.config import TrainConfig


def tiny_config(**overrides) -> TrainConfig:
    """Small nets and batches: a CPU epoch over 96 images takes a fraction of a second."""
    base = dict(ngf=8, ndf=8, batch_size=16, epochs=2, snapshot_epochs=(1,), swd_images=0, log_every=2)
    base.update(overrides)
    return TrainConfig(**base)


def write_blob_images(folder: Path, count: int, size: int = 96, seed: int = 0, ext: str = "png") -> Path:
    """`count` smooth random colour images (ImageFolder layout: folder/class0/NNNNN.ext)."""
    rng = np.random.default_rng(seed)
    sub = folder / "class0"
    sub.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        small = (rng.random((6, 6, 3)) * 255).astype(np.uint8)
        Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC).save(sub / f"{i:05d}.{ext}")
    return folder
