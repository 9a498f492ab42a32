"""Latent directions of a generator (GANSpace, Härkönen et al. 2020) and edits along them.

The features: G's 4x4 activations after its first BatchNorm and ReLU, flattened
((ngf*8) x 4 x 4 numbers). In the seed's G that is its first block's output; in the residual G
it is the first up-block's input after its BatchNorm and ReLU (the ConvTranspose before it is
linear in z, so its own PCA would only restate that linear map). Every `upsample` variant
shares these layers.

The directions, GANSpace's way for generators without a style space: PCA of the features of
SAMPLES fixed seeded noise vectors, then a least-squares regression of z on the PCA
coordinates, whose k-th coefficient vector is the direction u_k in z space. PCA coordinates are
mutually orthogonal, so the regression has a closed form: u_k is proportional to U_k^T Z, with
U_k the k-th left singular vector of the centred feature matrix. Each u_k is normalised and
given a sign (its largest component positive); `scales[k]` is the standard deviation of the
samples' z along u_k, so an edit of amount 1 moves a face by one standard deviation:
z' = z + amount * scales[k] * u_k. `variance[k]` is component k's share of the features' total
variance.

Cost, bounded whatever the checkpoint: the PCA diagonalises the smaller of the features'
covariance and the SAMPLES x SAMPLES Gram matrix (accumulated FEATURE_CHUNK features at a time),
so no matrix grows past SAMPLES^2 float64 (32 MB) and a SAMPLES x FEATURE_CHUNK slice (33 MB);
time is one eigendecomposition of at most that size plus a pass linear in the feature count
(ngf*128: at most 32,768, at ngf 256). Measured on the shared 2-core machine (load ~9) by a
fresh process: ngf 64, 44 s and 235 MiB peak RSS growth; ngf 256, 51 s and 266 MiB (most of
both is the eigendecomposition and its workspace). Everything runs on the CPU in a fixed order,
so the same weights give the same directions.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from model.networks import Generator, ResNetGenerator

DIRECTIONS = 16  # directions per checkpoint (fewer when nz is smaller)
SAMPLES = 2000  # noise vectors the PCA sees
SAMPLE_SEED = 20200406  # their seed (GANSpace's arXiv date): fixed, so the directions are too
FEATURE_CHUNK = 2048  # features per Gram-matrix step
MAX_AMOUNT = 10.0  # |amount| of one edit, in standard deviations
MAX_EDITS = 8  # edits per request
FORMAT = "dcgan-faces-directions/1"
FEATURES = "G's 4x4 activations after its first BatchNorm and ReLU"
MAX_FILE_BYTES = 2_000_000  # a cache file for nz 1024 is ~0.7 MB


_AMOUNT = r"-?[0-9]{1,2}(?:\.[0-9]{1,6})?"
_EDIT = re.compile(rf"([0-9]{{1,2}}):({_AMOUNT})")
# The syntax of an `edit` query, for the HTTP schema; what matches may still be refused for what a
# pattern does not say (an index past the model's directions, |amount| > MAX_AMOUNT, a repeated index).
EDIT_PATTERN = rf"^[0-9]{{1,2}}:{_AMOUNT}(,[0-9]{{1,2}}:{_AMOUNT}){{0,{MAX_EDITS - 1}}}$"


class EditError(ValueError):
    """An edit list that cannot be used; the message says which part and why."""


def parse_edits(text: str) -> tuple[tuple[int, float], ...]:
    """`3:1.5,0:-2` -> ((0, -2.0), (3, 1.5)): (direction, amount) pairs sorted by direction, so
    the same edits written in another order are the same query. Exactly EDIT_PATTERN's syntax;
    EditError for anything else, an |amount| over MAX_AMOUNT or a direction given twice.
    Directions past a model's count are the caller's to refuse (check_edits)."""
    items = text.split(",")
    if len(items) > MAX_EDITS:
        raise EditError(f"{len(items)} edits; at most {MAX_EDITS} at once")
    edits: dict[int, float] = {}
    for item in items:
        m = _EDIT.fullmatch(item)
        if m is None:
            shown = item if len(item) <= 24 else item[:24] + "..."
            raise EditError(f"{shown!r} is not DIRECTION:AMOUNT (write e.g. 0:1.5,3:-2; amounts are "
                            "decimals with at most 6 places)")
        k, amount = int(m.group(1)), float(m.group(2))
        if not (math.isfinite(amount) and abs(amount) <= MAX_AMOUNT):
            raise EditError(f"amount {m.group(2)} of direction {k} is out of range -{MAX_AMOUNT:g}..{MAX_AMOUNT:g}")
        if k in edits:
            raise EditError(f"direction {k} is edited twice; give each direction once")
        edits[k] = amount
    return tuple(sorted(edits.items()))


def check_edits(edits: tuple[tuple[int, float], ...], count: int) -> tuple[tuple[int, float], ...]:
    """`edits` without those of amount 0 (they change nothing: the query is the plain one),
    after refusing (EditError) a direction past `count`."""
    for k, _ in edits:
        if k >= count:
            raise EditError(f"direction {k} does not exist: this model has {count} (0 to {count - 1})")
    return tuple((k, a) for k, a in edits if a != 0)


def edits_text(edits: tuple[tuple[int, float], ...]) -> str:
    """The canonical text of `edits` (provenance chunks): `0:-2.0,3:1.5`."""
    return ",".join(f"{k}:{a!r}" for k, a in edits)


class DirectionsError(ValueError):
    """A directions file that is not one this code wrote (damaged, foreign or hostile)."""


@dataclass(frozen=True)
class Directions:
    """The directions of one generator, `checksum` its weights' (model/provenance.py)."""
    checksum: str
    vectors: torch.Tensor  # (K, nz) float32, unit rows
    scales: tuple[float, ...]  # z's standard deviation along each
    variance: tuple[float, ...]  # each component's share of the features' variance, descending

    def __len__(self) -> int:
        return len(self.scales)

    def to_json(self) -> bytes:
        return json.dumps({
            "format": FORMAT, "checksum": self.checksum, "samples": SAMPLES, "seed": SAMPLE_SEED,
            "features": FEATURES, "scales": list(self.scales), "variance": list(self.variance),
            "vectors": self.vectors.tolist()}).encode()

    @classmethod
    def from_json(cls, data: bytes, checksum: str | None, nz: int) -> Directions:
        """Read what `to_json` wrote for these weights (`checksum`, None: any; noise length
        `nz`), checking every part; DirectionsError for anything else."""
        try:
            d = json.loads(data)
        except (ValueError, RecursionError):
            raise DirectionsError("not JSON") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT or not isinstance(d.get("checksum"), str) \
                or (checksum is not None and d["checksum"] != checksum) \
                or d.get("samples") != SAMPLES or d.get("seed") != SAMPLE_SEED:
            raise DirectionsError("not the directions of these weights")
        k = expected_count(nz)
        scales, variance, vectors = d.get("scales"), d.get("variance"), d.get("vectors")
        if not (_floats(scales, k) and _floats(variance, k) and isinstance(vectors, list) and len(vectors) == k
                and all(_floats(v, nz) for v in vectors)):
            raise DirectionsError("directions of the wrong shape or not finite numbers")
        if any(s < 0 for s in scales) or any(not 0 <= v <= 1 for v in variance):
            raise DirectionsError("scales or variance shares out of range")
        return cls(d["checksum"], torch.tensor(vectors, dtype=torch.float32), tuple(map(float, scales)),
                   tuple(map(float, variance)))


def _floats(value: object, length: int) -> bool:
    return isinstance(value, list) and len(value) == length and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in value)


def expected_count(nz: int) -> int:
    """How many directions a generator with noise length `nz` has."""
    return min(DIRECTIONS, nz)


def early_features(g: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """(N, nz, 1, 1) noise -> (N, ngf*8*16) features (see the module docstring)."""
    if isinstance(g, Generator):
        x = g.main[:3](z)
    elif isinstance(g, ResNetGenerator):
        x = g.main[1].residual[:2](g.main[0](z))
    else:
        raise TypeError(f"no early features for {type(g).__name__}")
    return x.reshape(len(z), -1)


@torch.no_grad()
def compute_directions(g: nn.Module, checksum: str) -> Directions:
    """The directions of eval-mode torch generator `g` (on the CPU)."""
    nz = g.nz
    z = torch.randn(SAMPLES, nz, generator=torch.Generator().manual_seed(SAMPLE_SEED))
    channels = g.main[0].out_channels
    per = max(1, FEATURE_CHUNK // 16)  # output channels per step (16 features each)
    parts, gram, total = [], None, 0.0
    small = channels * 16 <= SAMPLES  # fewer features than samples: their covariance is the smaller matrix
    for start in range(0, channels, per):
        x = _channel_features(g, z, start, min(start + per, channels))
        x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).double()
        x -= x.mean(0)
        total += float(x.square().sum())
        if small:
            parts.append(x)
        else:
            gram = x @ x.T if gram is None else gram.add_(x @ x.T)
    k = expected_count(nz)
    if small:
        x = torch.cat(parts, 1)
        eigenvalues, eigenvectors = torch.linalg.eigh(x.T @ x)  # ascending
        eigenvalues, coords = eigenvalues.flip(0)[:k], x @ eigenvectors.flip(1)[:, :k]
    else:
        eigenvalues, eigenvectors = torch.linalg.eigh(gram)
        eigenvalues, coords = eigenvalues.flip(0)[:k], eigenvectors.flip(1)[:, :k]
    eigenvalues = eigenvalues.clamp(min=0)
    zd = z.double()
    vectors = coords.T @ (zd - zd.mean(0))  # (k, nz): the regression's coefficients, up to scale
    norms = vectors.norm(dim=1, keepdim=True)
    fallback = torch.eye(k, nz, dtype=torch.float64)  # a degenerate component (dead features): an axis
    vectors = torch.where(norms > 1e-12, vectors / norms.clamp(min=1e-300), fallback)
    signs = torch.sign(vectors.gather(1, vectors.abs().argmax(1, keepdim=True)))
    vectors = vectors * signs
    scales = (zd @ vectors.T).std(0)
    shares = eigenvalues / total if total > 0 else torch.zeros(k, dtype=torch.float64)
    return Directions(checksum, vectors.float(), tuple(round(float(s), 6) for s in scales),
                      tuple(round(float(min(max(v, 0.0), 1.0)), 6) for v in shares))


def _channel_features(g: nn.Module, z: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """early_features restricted to output channels lo..hi-1 of G's first layer (the layers up
    to the ReLU act per channel), so a step never holds more than FEATURE_CHUNK features."""
    first = g.main[0]
    w = first.weight[:, lo:hi]  # ConvTranspose2d weight: (nz, out, 4, 4)
    x = torch.nn.functional.conv_transpose2d(z.view(len(z), -1, 1, 1), w)
    bn = g.main[1] if isinstance(g, Generator) else g.main[1].residual[0]
    x = torch.nn.functional.batch_norm(x, bn.running_mean[lo:hi], bn.running_var[lo:hi], bn.weight[lo:hi],
                                       bn.bias[lo:hi], training=False, eps=bn.eps)
    return torch.relu(x).reshape(len(z), -1)


def edit_offset(directions: Directions, edits: Sequence[tuple[int, float]]) -> torch.Tensor:
    """(nz,) float32: the sum of amount * scale * direction over `edits` ((index, amount), in
    the order given)."""
    offset = torch.zeros(directions.vectors.shape[1], dtype=torch.float64)
    for k, amount in edits:
        offset += amount * directions.scales[k] * directions.vectors[k].double()
    return offset.float()


def edit_noise(noise: torch.Tensor, directions: Directions | None, edits: Sequence[tuple[int, float]]
               ) -> torch.Tensor:
    """`noise` (N, nz, 1, 1) moved along `directions` by `edits`; with no edits, `noise` itself
    (the same tensor: the plain faces, bit for bit)."""
    if not edits:
        return noise
    if directions is None:
        raise ValueError("edits need the model's directions")
    return noise + edit_offset(directions, edits).view(1, -1, 1, 1)
