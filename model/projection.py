"""Projection: the latent (noise vector) whose face best reproduces a given picture.

The generator stays fixed (eval mode, no gradient on its weights); only z moves. Several seeded
starts are optimised together in one batch (each row is independent of its batch-mates: eval-
mode BatchNorm), Adam on the pixel error plus the error of 4x-downsampled images (the coarse
term pulls the layout and colours into place before the details), then the best start alone is
refined for the remaining steps. Everything is seeded, so the same picture and checkpoint give
the same latent (on the same machine and thread count: float sums are not associative), unless
the wall-time bound stops it first (`stopped` says which bound ended it).

stylegan2-ada-pytorch's projector.py optimises a W latent with a perceptual (LPIPS) loss; a
96x96 DCGAN has no W space and no perceptual network in this project, so plain pixel errors on
z, with a weak pull of |z|^2/nz towards 1 (the typical set of the noise G was trained on).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from model.imageio import to_uint8
from model.sampling import sample_noise

PROJECT_SEED = 0x5EED  # the seed of the starts (their noise rows are sample_noise's 0..starts-1)
LR = 0.08  # Adam's step size at the start; it decays (cosine) to LR / 20 by the last step
PRIOR_WEIGHT = 1e-3  # weight of (|z|^2 / nz - 1)^2


@dataclass(frozen=True)
class Projection:
    z: torch.Tensor  # (nz,) float32: the latent found
    psnr: float  # dB, of the 8-bit face G draws from z against the target
    steps: int  # optimiser steps taken
    seconds: float
    stopped: str  # "steps" (the step bound) or "time" (the wall-time bound came first)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 images (infinite when identical; capped at 100)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 100.0 if mse == 0 else min(100.0, 10 * math.log10(255.0 ** 2 / mse))


def _losses(images: torch.Tensor, target: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """One loss per row: pixel MSE + 4x-downsampled MSE + the prior."""
    pixel = (images - target).pow(2).mean(dim=(1, 2, 3))
    coarse = (F.avg_pool2d(images, 4) - F.avg_pool2d(target, 4)).pow(2).mean(dim=(1, 2, 3))
    prior = (z.pow(2).mean(dim=(1, 2, 3)) - 1).pow(2)
    return pixel + coarse + PRIOR_WEIGHT * prior


def _lr(step: int, steps: int) -> float:
    return LR * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / max(steps, 1))))


def project(g: nn.Module, target: np.ndarray, steps: int = 200, starts: int = 8,
            seconds: float = 30.0) -> Projection:
    """The latent whose face best matches `target` (uint8 3 x H x W, G's image size).

    At most `steps` Adam steps in all and about `seconds` of wall time (checked after each step):
    the first quarter of the steps moves all `starts` rows, the rest only the best of them."""
    began = time.monotonic()
    device = next(g.parameters()).device
    want = torch.from_numpy(np.ascontiguousarray(target)).float().div(127.5).sub(1).unsqueeze(0).to(device)
    z = sample_noise(PROJECT_SEED, range(starts), g.nz).to(device).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=LR)
    best_loss, best_z = math.inf, z[0].detach().clone()
    split = max(1, steps // 4) if starts > 1 else 0
    done, stopped = 0, "steps"
    with torch.enable_grad():
        while done < steps:
            if done == split:  # keep the best start; a fresh optimiser for it alone
                z = best_z.unsqueeze(0).clone().requires_grad_(True)
                opt = torch.optim.Adam([z], lr=_lr(done, steps))
            for group in opt.param_groups:
                group["lr"] = _lr(done, steps)
            losses = _losses(g(z), want, z)
            seen = losses.detach()
            row = int(torch.argmin(seen))
            if float(seen[row]) < best_loss:  # the loss of z before this step's update
                best_loss, best_z = float(seen[row]), z[row].detach().clone()
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            opt.step()
            done += 1
            if time.monotonic() - began > seconds:
                stopped = "steps" if done == steps else "time"
                break
    with torch.no_grad():
        last = _losses(g(z), want, z)
        row = int(torch.argmin(last))
        if float(last[row]) < best_loss:
            best_z = z[row].detach().clone()
        face = to_uint8(g(best_z.unsqueeze(0)).float().cpu())[0].numpy()
    return Projection(best_z.flatten().float().cpu().contiguous(), psnr(face, np.asarray(target)), done,
                      time.monotonic() - began, stopped)
