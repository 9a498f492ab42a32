"""What a run's samples are measured against: a fixed sample of its real images and fixed noise.

Training (model/train.py, at each snapshot epoch) and benchmarks/quality_bench.py (at fixed CPU
minutes) measure through the same `QualityProbe`, so their SWD and artefact figures are one
measure taken the same way.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from model import spectrum
from model.data import ImageDataset
from model.sampling import sample_noise
from model.swd import pyramid_descriptors, swd


def real_sample(dataset: ImageDataset, n: int, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """n training images in [-1, 1] (N, 3, H, W) on `device`, a fixed pick from `seed`, in the
    folder's order."""
    pick = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:n]
    images = torch.from_numpy(dataset.images[np.sort(pick.numpy())]).to(device)
    return images.float().div_(127.5).sub_(1)


class QualityProbe:
    """min(n, the dataset's size) real images picked by `seed` (their SWD descriptors, spectrum
    and colour kept on `device`) and as many noise vectors drawn from `noise_seed`: every
    measurement of a run compares the same reals with the images of the same noise."""

    def __init__(self, dataset: ImageDataset, n: int, seed: int, noise_seed: int, nz: int,
                 device: torch.device) -> None:
        n = min(n, len(dataset))
        real = real_sample(dataset, n, seed, device)
        self.seed, self.device = seed, device
        self.real_swd = pyramid_descriptors(real, seed=seed)
        self.real_spectrum, self.real_colour = spectrum.power_spectrum(real), spectrum.colour_stats(real)
        self.noise = sample_noise(noise_seed, range(n), nz)

    def swd(self, fake: torch.Tensor) -> dict[str, Any]:
        """{"swd", "swd_levels"} of `fake` (images of `self.noise`) against the reals."""
        return swd(self.real_swd, fake.to(self.device), seed=self.seed)

    def looks(self, fake: torch.Tensor) -> dict[str, float]:
        """The checkerboard and colour measures of model/spectrum.py, against the reals'."""
        fake = fake.to(self.device)
        return {**spectrum.artefact(self.real_spectrum, fake), **spectrum.colour(self.real_colour, fake)}
