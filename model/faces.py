"""One PNG per seed, for many seeds: the bulk mode of `generate` and GET /faces.zip.

The face of seed s is image 0 of seed s, so its PNG is byte for byte what a one-image grid of
that seed (`/generate?seed=s&n=1`) is. Faces are rendered CHUNK seeds per generator pass and
handed out chunk by chunk, so memory holds one chunk's images whatever the number of seeds.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import torch
from torch import nn

from model.imageio import encode_png, grid_rgb
from model.sampling import CHUNK, run_generator, sample_noise


def face_name(seed: int) -> str:
    """The file name of a seed's face (stylegan's `generate.py` naming)."""
    return f"seed{seed:04d}.png"


def face_noise(seeds: Sequence[int], nz: int, truncation: float | None = None) -> torch.Tensor:
    """(len(seeds), nz, 1, 1): row k is the noise of image 0 of seeds[k]."""
    if not seeds:
        return torch.empty(0, nz, 1, 1)
    return torch.cat([sample_noise(s, [0], nz, truncation) for s in seeds])


TextFn = Callable[[int], Mapping[str, str]]  # seed -> the PNG's provenance text chunks


def render_faces(g: nn.Module, seeds: Sequence[int], truncation: float | None = None,
                 text: TextFn | None = None) -> list[bytes]:
    """The PNG of each seed's face, in order (one generator pass per CHUNK seeds), each with
    `text(seed)` as its text chunks."""
    images = run_generator(g, face_noise(seeds, g.nz, truncation))
    return [encode_png(grid_rgb(images[k:k + 1]), text=text(s) if text else None) for k, s in enumerate(seeds)]


def chunked(seeds: Sequence[int], size: int = CHUNK) -> Iterator[Sequence[int]]:
    for start in range(0, len(seeds), size):
        yield seeds[start:start + size]


def iter_faces(g: nn.Module, seeds: Iterable[int], truncation: float | None = None,
               text: TextFn | None = None) -> Iterator[tuple[int, bytes]]:
    """(seed, PNG) for each seed, rendering the next chunk only when this one has been taken."""
    for part in chunked(list(seeds)):
        yield from zip(part, render_faces(g, part, truncation, text), strict=True)
