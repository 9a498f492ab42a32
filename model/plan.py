"""How a training process runs its step: every device-dependent choice of the loop, made once.

`plan_for(cfg, device)` looks at the device and the config one time and writes the answers down
as plain flags; the trainer reads only the flags and never compares devices again. A test on a
machine without a GPU takes a CUDA-only path by building a plan with that flag set
(`dataclasses.replace(plan_for(cfg, cpu), data_on_device=True)`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from model.config import TrainConfig


@dataclass(frozen=True)
class StepPlan:
    device: torch.device  # indexed (cuda:0), as model.runtime.resolve_device returns it
    # Autocast dtype of the networks' forward passes (weights, gradients and Adam stay fp32);
    # None: plain fp32.
    autocast: torch.dtype | None
    # The uint8 dataset is copied to the device once and each batch is an on-device gather;
    # None: when it fits (model/batches.py), False: batches are gathered on the host.
    data_on_device: bool | None
    # G and D in channels_last (NHWC), measured faster for these convolutions with cuDNN and with
    # oneDNN alike; off for compiled nets (pytorch/pytorch#171622: compiled convolution_backward
    # mispredicts channels_last strides on CUDA).
    channels_last: bool
    # DiffAugment works on channels_last images as they come: no layout copies on the way to D
    # (on the CPU its transforms measured twice as fast in NCHW, so it converts there).
    augment_channels_last: bool
    # Adam's fused kernel (one launch for all parameters).
    fused_adam: bool
    # torch.compile backend for G's and D's forward passes; None: eager.
    compile_backend: str | None
    # glibc keeps freed activation buffers in the heap (model/runtime.tune_host_allocator):
    # a CPU step allocates and frees the same few-MB activations over and over.
    tune_host_heap: bool

    @property
    def autocast_device(self) -> str:
        return self.device.type


def plan_for(cfg: TrainConfig, device: torch.device) -> StepPlan:
    """The plan for training `cfg` on `device` (already resolved)."""
    cuda = device.type == "cuda"
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and cuda)
    compiled = cfg.compile and cuda
    return StepPlan(
        device=device,
        autocast=torch.bfloat16 if bf16 else None,
        data_on_device=None if cuda else False,
        channels_last=not compiled,
        augment_channels_last=cuda and not compiled,
        fused_adam=cuda,
        compile_backend="inductor" if compiled else None,
        tune_host_heap=not cuda,
    )
