"""Small builders the tests share (imported as `tests.helpers`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from model.config import TrainConfig
from worker.errors import BrokerUnavailable


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


def assert_same_weights(a: dict, b: dict) -> None:
    """Two state dicts hold bit-identical tensors under the same names."""
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


def tiny_job_config(**overrides) -> dict:
    """tiny_config as a job record stores it."""
    return tiny_config(**overrides).to_dict()


class FakeQueue:
    """Stands in for the broker: records the job ids it was given, or refuses them."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.refuse = False

    def __call__(self, job_id: str) -> None:
        if self.refuse:
            raise BrokerUnavailable("the job queue is not reachable (test)")
        self.sent.append(job_id)
