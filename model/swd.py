"""Sample quality without a pretrained network: sliced Wasserstein distance (SWD) between
Laplacian-pyramid patches of real and generated images (Karras et al. 2018, "Progressive
Growing of GANs", section 5).

Each image is split into a Laplacian pyramid (96, 48, 24 band-pass levels and a 12 px low-pass);
from every level we take random 7x7 RGB patches, normalise each channel over the set, and
compare the two sets' distributions with the sliced Wasserstein distance along random
directions. Lower is better; 0 means the patch statistics match. The fine levels measure
texture and sharpness, the coarse ones colour and layout. Reported x1000 as in the paper.

Cost with the default sample (`swd_images` = 512 real and 512 generated images, 64 patches
each, 4 x 128 directions), measured on the 2-core CPU of BENCHMARKS.md: 0.6 s once per run for
the real side, then 2.1 s per snapshot epoch, plus the generator's forward pass. On CUDA it runs
on the GPU (not yet measured there).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

PATCH = 7
_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _kernel(x: torch.Tensor) -> torch.Tensor:
    k = (_BINOMIAL[:, None] * _BINOMIAL[None, :]).to(x)
    return k.expand(x.shape[1], 1, 5, 5)


def _down(x: torch.Tensor) -> torch.Tensor:
    """5x5 binomial blur, keeping every second pixel (computed only where it is kept)."""
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), _kernel(x), stride=2, groups=x.shape[1])


def _up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero-insertion upsampling followed by the same blur (x4 to keep the brightness)."""
    up = F.conv_transpose2d(x, _kernel(x) * 4, stride=2, padding=2, output_padding=1,
                            groups=x.shape[1])
    return up[..., :size[0], :size[1]]


def laplacian_pyramid(images: torch.Tensor, min_size: int = 16) -> list[torch.Tensor]:
    """Band-pass levels from finest to coarsest, ending with the low-pass residual; stops once
    the next level would be smaller than `min_size`."""
    levels, cur = [], images.float()
    while cur.shape[-1] >= min_size:
        low = _down(cur)
        levels.append(cur - _up(low, cur.shape[-2:]))
        cur = low
    levels.append(cur)
    return levels


def _patches(level: torch.Tensor, per_image: int, gen: torch.Generator) -> torch.Tensor:
    n, c, h, w = level.shape
    ys = torch.randint(0, h - PATCH + 1, (n, per_image), generator=gen).to(level.device)
    xs = torch.randint(0, w - PATCH + 1, (n, per_image), generator=gen).to(level.device)
    off = torch.arange(PATCH, device=level.device)
    rows = (ys[..., None] + off)[..., :, None]            # n, p, 7, 1
    cols = (xs[..., None] + off)[..., None, :]            # n, p, 1, 7
    idx = torch.arange(n, device=level.device)[:, None, None, None]
    patches = level[idx, :, rows, cols]                    # n, p, 7, 7, c
    return patches.permute(0, 1, 4, 2, 3).reshape(n * per_image, c * PATCH * PATCH)


def _normalise(desc: torch.Tensor, channels: int = 3) -> torch.Tensor:
    d = desc.view(desc.shape[0], channels, -1)
    mean = d.mean(dim=(0, 2), keepdim=True)
    std = d.std(dim=(0, 2), keepdim=True).clamp_min(1e-8)
    return ((d - mean) / std).view_as(desc)


def pyramid_descriptors(images: torch.Tensor, per_image: int = 64, seed: int = 0
                        ) -> list[torch.Tensor]:
    """Normalised patch descriptors, one (N*per_image, 147) tensor per pyramid level.
    `images` are N x 3 x H x W in [-1, 1]; patch positions come from `seed`."""
    gen = torch.Generator().manual_seed(seed)
    levels = [lvl for lvl in laplacian_pyramid(images) if min(lvl.shape[-2:]) >= PATCH]
    return [_normalise(_patches(lvl, per_image, gen)) for lvl in levels]


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, directions: int = 128, repeats: int = 4,
                       seed: int = 0) -> float:
    """Mean over `repeats` x `directions` random unit directions of the 1-D Wasserstein distance
    between the projections of descriptor sets a and b (same size)."""
    if a.shape != b.shape:
        raise ValueError("descriptor sets must have the same shape")
    gen = torch.Generator().manual_seed(seed)
    total = 0.0
    for _ in range(repeats):
        dirs = torch.randn(a.shape[1], directions, generator=gen).to(a)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        pa, pb = dirs.T @ a.T, dirs.T @ b.T
        if a.is_cuda:
            total += (torch.sort(pa, dim=1).values - torch.sort(pb, dim=1).values).abs().mean().item()
        else:  # numpy sorts contiguous rows several times faster than torch on the CPU
            total += float(np.abs(np.sort(pa.numpy(), axis=1) - np.sort(pb.numpy(), axis=1)).mean())
    return total / repeats


def swd(real: torch.Tensor | list[torch.Tensor], fake: torch.Tensor, per_image: int = 64,
        seed: int = 0) -> dict[str, float | list[float]]:
    """SWD x 1000 per pyramid level (finest first) and their mean. `real` may be descriptors
    computed once with `pyramid_descriptors` (a training run reuses them at every snapshot)."""
    real_desc = real if isinstance(real, list) else pyramid_descriptors(real, per_image, seed)
    fake_desc = pyramid_descriptors(fake, per_image, seed + 1)
    levels = [1e3 * sliced_wasserstein(r, f, seed=seed) for r, f in zip(real_desc, fake_desc, strict=True)]
    return {"swd": sum(levels) / len(levels), "swd_levels": levels}
