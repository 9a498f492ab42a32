"""Training batches from the decoded uint8 dataset, as float images in [-1, 1] in the layout the
networks run in (channels_last unless the plan says otherwise).

Where the images live is decided once, when the batches are made, and kept as `on_device`:
either the whole dataset is copied to the training device (HWC per image for channels_last nets,
so a batch gathered from it needs no layout copy) and a batch is one on-device gather, or
batches are gathered on the host from the memory map and copied over. Nothing afterwards asks
which device a tensor is on.
"""
from __future__ import annotations

import numpy as np
import torch

# Fraction of free GPU memory the uint8 dataset may take before batches come from the host.
GPU_DATASET_SHARE = 0.5
_COPY_ROWS = 4096  # images per host-to-device copy while filling the device store


def fits_on_device(nbytes: int, device: torch.device) -> bool:
    """Whether `nbytes` of images may live on `device` (CUDA: under GPU_DATASET_SHARE of what
    is free now; never on the CPU, where the memory map already is the store)."""
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes < free * GPU_DATASET_SHARE


class Batches:
    def __init__(self, images: np.ndarray, device: torch.device, on_device: bool | None = None,
                 channels_last: bool = True) -> None:
        """`images`: N x 3 x S x S uint8 (the decoded cache, memory-mapped). `on_device` None:
        copy the dataset to `device` when it fits there."""
        host = torch.from_numpy(images)
        self.n = host.shape[0]
        self.device = device
        self.on_device = fits_on_device(host.numel(), device) if on_device is None else on_device
        self.layout = torch.channels_last if channels_last else torch.contiguous_format
        if self.on_device:
            rows = host.permute(0, 2, 3, 1) if channels_last else host  # stored as a batch is used
            self.store = torch.empty(rows.shape, dtype=torch.uint8, device=device)
            for s in range(0, self.n, _COPY_ROWS):  # chunked: never a second full host copy
                self.store[s:s + _COPY_ROWS].copy_(rows[s:s + _COPY_ROWS])
        else:
            self.store = host

    def order(self, perm: torch.Tensor) -> torch.Tensor:
        """An epoch's permutation (drawn on the CPU) where the gathers happen."""
        return perm.to(self.device) if self.on_device else perm

    def get(self, idx: torch.Tensor) -> torch.Tensor:
        """Images `idx` (a slice of `order`'s result) as float in [-1, 1] on the training device
        (the seed's ToTensor + Normalize(0.5, 0.5))."""
        x = self.store.index_select(0, idx)
        if self.on_device:
            if self.layout is torch.channels_last:
                x = x.permute(0, 3, 1, 2)  # NHWC storage: an NCHW view that is channels_last
        else:
            x = x.to(self.device, non_blocking=True).contiguous(memory_format=self.layout)  # on uint8: 1/4 the bytes
        return x.float().mul_(1 / 127.5).sub_(1.0)
