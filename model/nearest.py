"""Nearest training images of a generated face, on the decoded dataset cache.

The space: each image averaged over 8x8-pixel blocks (96x96x3 -> 12x12x3 = 432 numbers, 0-255),
Euclidean distance. Cheap (one pass over the memory-mapped cache builds it; 51,223 images make a
22 MB uint8 index) and meaningful for the question asked here, "did G copy a training face?":
a copy, or a near copy shifted by less than a block, lands next to its original, while pose and
colour differences between distinct faces keep them apart. It is not a perceptual metric: two
photos of the same character in other poses are far apart in it. D's features would add that,
but change with every checkpoint, so the index could no longer be built once per dataset.

Cost, bounded whatever the request: building reads the cache once, BUILD_CHUNK images at a
time (O(N) time, O(N x 432) bytes kept); a query is one O(N x 432) pass in CHUNK-row float32
slices. `reference` (the median distance from a real image to its nearest other, different
real image, over a fixed sample of at most REFERENCE_SAMPLE images) is computed once per index.
Identical copies in the data are counted once there: a folder holding each picture twice (or a
few pictures many times over) would otherwise have a reference of 0, and nothing could ever be
closer than that.

The copy rule (the one place it is decided): a generated face is a copy when its nearest
training image is closer than COPY_FRACTION x `reference`, i.e. closer than half the distance
that separates a typical real image from its nearest other one. Why half, and why the median:
the median stays put when a dataset holds some near-duplicates (re-encoded or cropped copies
drag a low quantile towards 0); a generated face that is a new face lies about as far from the
data as a real one does (new synthetic faces: never under 0.6 x `reference`); a face G has
learnt by heart lies far closer (its pixels differ from the original by noise and blur, which
8x8 block means mostly average away: a G that memorised four pictures drew faces from 0.15 x
`reference` up, 62.5% of them under half). Half the reference sits in the gap between the two.
`copy_rate` is the share of a fixed set of generated faces that are copies.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BLOCK = 8
CHUNK = 2048  # index rows per query slice (2048 x 432 float32: 3.5 MB)
BUILD_CHUNK = 256  # images per building step (256 x 3 x 96 x 96 as float32: 28 MB)
REFERENCE_SAMPLE = 256
COPY_FRACTION = 0.5  # a copy: nearest training image closer than this share of `reference`
METRIC = (f"Euclidean distance between images averaged over {BLOCK}x{BLOCK}-pixel blocks "
          "(0-255 per channel); see model/nearest.py")
COPY_METRIC = (f"copy_rate: the share of a snapshot's fixed-noise faces whose nearest training image lies "
               f"closer than copy_distance = {COPY_FRACTION} x the median real-to-real nearest distance "
               "(block means, see model/nearest.py); near 0 is healthy, near 1 means G reproduces its data")


def block_features(u8: np.ndarray) -> np.ndarray:
    """(N, 3, S, S) uint8 -> (N, 3 * (S/BLOCK)^2) float32 block means."""
    n, c, h, w = u8.shape
    x = np.asarray(u8, dtype=np.float32).reshape(n, c, h // BLOCK, BLOCK, w // BLOCK, BLOCK)
    return x.mean(axis=(3, 5)).reshape(n, -1)


@dataclass
class NearestIndex:
    feats: np.ndarray  # (N, D) uint8: rounded block means
    norms: np.ndarray = field(init=False)  # (N,) float32 squared norms
    _reference: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.norms = np.concatenate([np.square(self.feats[s:s + CHUNK].astype(np.float32)).sum(1)
                                     for s in range(0, len(self.feats), CHUNK)]) if len(self.feats) else \
            np.zeros(0, np.float32)

    @classmethod
    def build(cls, images: np.ndarray) -> NearestIndex:
        """From the (N, 3, S, S) uint8 dataset (memory-mapped: read CHUNK images at a time)."""
        parts = [np.rint(block_features(images[s:s + BUILD_CHUNK])).astype(np.uint8)
                 for s in range(0, images.shape[0], BUILD_CHUNK)]
        return cls(np.concatenate(parts) if parts else np.zeros((0, 1), np.uint8))

    def __len__(self) -> int:
        return len(self.feats)

    def squared_distances(self, q: np.ndarray) -> np.ndarray:
        """(M, D) float32 queries -> (M, N) squared distances, CHUNK index rows at a time."""
        q = np.asarray(q, dtype=np.float32)
        qn = np.square(q).sum(1, keepdims=True)
        out = np.empty((len(q), len(self.feats)), np.float32)
        for s in range(0, len(self.feats), CHUNK):
            x = self.feats[s:s + CHUNK].astype(np.float32)
            out[:, s:s + CHUNK] = qn + self.norms[s:s + CHUNK] - 2 * (q @ x.T)
        return np.maximum(out, 0)

    def nearest_distances(self, q: np.ndarray, rows: int = 256) -> np.ndarray:
        """(M, D) queries -> (M,) distance of each to its nearest index row; `rows` queries at a
        time, so memory stays at rows x CHUNK floats whatever M."""
        q = np.asarray(q, dtype=np.float32)
        out = np.full(len(q), np.inf, np.float32)
        for s in range(0, len(q), rows):
            if len(self.feats):
                out[s:s + rows] = self.squared_distances(q[s:s + rows]).min(1)
        return np.sqrt(out)

    def nearest(self, q: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The k nearest (index, distance) of one (D,) query, ascending (ties: lower index)."""
        d2 = self.squared_distances(q[None])[0]
        k = min(k, len(d2))
        top = np.argpartition(d2, k - 1)[:k] if k < len(d2) else np.arange(len(d2))
        top = top[np.lexsort((top, d2[top]))]
        return [(int(i), float(np.sqrt(d2[i]))) for i in top]

    def reference(self) -> float:
        """Median distance from a real image to its nearest other, different real image (a seeded
        sample of the distinct images; 0 when the data holds fewer than two)."""
        if self._reference is None:
            distinct = _distinct_rows(self.feats)
            n = len(distinct)
            if n < 2:
                self._reference = 0.0
            else:
                pick = np.sort(np.random.default_rng(0).choice(n, min(REFERENCE_SAMPLE, n), replace=False))
                queries = self.feats[distinct[pick]]
                d2 = NearestIndex(self.feats[distinct]).squared_distances(queries.astype(np.float32)) \
                    if n < len(self.feats) else self.squared_distances(queries.astype(np.float32))
                d2[np.arange(len(pick)), pick] = np.inf  # not itself
                self._reference = float(np.median(np.sqrt(d2.min(1))))
        return self._reference

    def copy_distance(self) -> float:
        """The distance under which a generated face counts as a copy of a training image."""
        return COPY_FRACTION * self.reference()

    def copy_rate(self, faces: np.ndarray) -> tuple[float, float]:
        """(share of `faces`, (M, 3, S, S) uint8 generated images, whose nearest training image
        lies closer than copy_distance(); that distance)."""
        limit = self.copy_distance()
        if len(faces) == 0:
            return 0.0, limit
        nearest = self.nearest_distances(np.rint(block_features(faces)))  # rounded as the index is
        return float(np.mean(nearest < limit)), limit


def _distinct_rows(feats: np.ndarray) -> np.ndarray:
    """Indexes of the first of each set of identical rows, ascending."""
    if len(feats) == 0:
        return np.zeros(0, np.int64)
    rows = np.ascontiguousarray(feats).view(np.dtype((np.void, feats.shape[1] * feats.itemsize)))[:, 0]
    return np.sort(np.unique(rows, return_index=True)[1])


def open_dataset(cache_dirs: list[Path], fingerprint: str, image_size: int) -> np.ndarray | None:
    """The memory-mapped decoded dataset of `fingerprint` from the first cache folder holding it."""
    from model.data import _open_cached
    for folder in cache_dirs:
        opened = _open_cached(Path(folder), fingerprint, image_size)
        if opened is not None:
            return opened[0]
    return None
