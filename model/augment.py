"""Differentiable augmentation (DiffAugment; Zhao et al. 2020, "Differentiable Augmentation for
Data-Efficient GAN Training").

Every image D sees, real or generated, in D's step and in G's, goes through the same random
transforms; they are differentiable, so G learns through them. D never sees an un-augmented
image and so cannot learn the augmentations as a cue, and G is not pushed to produce them.
The paper's three transforms, applied in this order:

- color: brightness + U(-0.5, 0.5); saturation x U(0, 2) about each pixel's channel mean;
  contrast x U(0.5, 1.5) about the image mean;
- translation: a shift of up to 1/8 of the side in x and y, the vacated border zero;
- cutout: a square of half the side, zeroed at a random centre (it may overhang the border).

Parameters are drawn per image from the `generator` given (the trainer's noise stream, whose
state checkpoints keep), so training stays reproducible and resumable to the bit.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def _uniform(x: torch.Tensor, gen: torch.Generator, low: float, high: float) -> torch.Tensor:
    u = torch.rand(x.shape[0], 1, 1, 1, device=x.device, generator=gen)
    return (u * (high - low) + low).to(x.dtype)


def color(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    b = _uniform(x, gen, -0.5, 0.5)  # brightness
    s = _uniform(x, gen, 0.0, 2.0)   # saturation
    c = _uniform(x, gen, 0.5, 1.5)   # contrast
    # The three steps, (((x + b) - m) * s + m - M) * c + M with m the brightened pixel's channel
    # mean and M the image mean, folded into one multiply-add: the per-pixel part of m - M does
    # not depend on b, and M = mean(x) + b. Several times faster on the CPU than three passes.
    pixel_mean = x.mean(dim=1, keepdim=True)
    image_mean = pixel_mean.mean(dim=(2, 3), keepdim=True)
    cs = c * s
    offset = torch.addcmul((1 - c) * image_mean + b, c - cs, pixel_mean)   # n, 1, h, w
    return torch.addcmul(offset, x, cs)


def translation(x: torch.Tensor, gen: torch.Generator, ratio: float = TRANSLATION_RATIO) -> torch.Tensor:
    n, c, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sy, sy + 1, (n, 1, 1), device=x.device, generator=gen)
    tx = torch.randint(-sx, sx + 1, (n, 1, 1), device=x.device, generator=gen)
    # Output pixel (i, j) of image k is input pixel (i - ty, j - tx), or zero outside the image:
    # a gather from the zero-padded image (its backward, a scatter-add, is several times faster
    # than that of advanced indexing on the CPU), along the pixels of whichever layout x has.
    padded = F.pad(x, (sx, sx, sy, sy))
    width = w + 2 * sx
    ys = torch.arange(h, device=x.device)[None, :, None] + (sy - ty)     # n, h, 1
    xs = torch.arange(w, device=x.device)[None, None, :] + (sx - tx)     # n, 1, w
    pixels = (ys * width + xs).view(n, h * w)
    if is_channels_last(padded):  # gather whole pixels of the NHWC storage, no layout copy
        nhwc = padded.permute(0, 2, 3, 1).reshape(n, -1, c)
        out = nhwc.gather(1, pixels[:, :, None].expand(n, h * w, c))
        return out.view(n, h, w, c).permute(0, 3, 1, 2)
    index = pixels[:, None, :].expand(n, c, h * w)
    return padded.reshape(n, c, -1).gather(2, index).view(n, c, h, w)


def cutout(x: torch.Tensor, gen: torch.Generator, ratio: float = CUTOUT_RATIO) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device, generator=gen)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device, generator=gen)
    ys = torch.arange(h, device=x.device)[None, :, None] - (cy - ch // 2)
    xs = torch.arange(w, device=x.device)[None, None, :] - (cx - cw // 2)
    hole = (ys >= 0) & (ys < ch) & (xs >= 0) & (xs < cw)              # n, h, w
    return x * (~hole)[:, None].to(x.dtype)


TRANSFORMS = {"color": color, "translation": translation, "cutout": cutout}


def is_channels_last(x: torch.Tensor) -> bool:
    """Whether `x` is stored NHWC (and not also plain NCHW, as a 1-channel or 1x1 image is)."""
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


class DiffAugment:
    """The policy's transforms, applied in order; an empty policy returns images unchanged.
    Images come back in the layout they came in. `nchw`: run the transforms on an NCHW copy
    (about twice as fast on the CPU as on channels_last); otherwise they work on the layout
    they are given, with no copies (on a GPU the copies would cost more than they save)."""

    def __init__(self, policy: Sequence[str], generator: torch.Generator, nchw: bool = True) -> None:
        unknown = [p for p in policy if p not in TRANSFORMS]
        if unknown:
            raise ValueError(f"unknown augmentation(s): {', '.join(unknown)}")
        self.policy = tuple(policy)
        self.generator = generator
        self.nchw = nchw

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not self.policy:
            return x
        layout = torch.channels_last if is_channels_last(x) else torch.contiguous_format
        if self.nchw:
            x = x.contiguous()
        for name in self.policy:
            x = TRANSFORMS[name](x, self.generator)
        return x.contiguous(memory_format=layout)
