"""The latent store: latents POST /project found, kept as small JSON files under
RUNS_DIR/_latents, each with the checkpoint it belongs to.

A latent's ID is a hash of its generator's checksum and its bytes, so the same latent on the same
weights always has the same ID (and a file whose content does not hash to its name is damaged).
Files are written atomically (model/fsutil.py); at most `max_count` are kept, the least recently
written go first. Every file is read as hostile: a bounded read, then its fields, shape and
values checked; one that fails is reported as damaged (a 404 with the reason), never a 500.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from model.fsutil import TEMP_MARK, atomic_write_bytes, read_bounded

LATENT_ID_PATTERN = r"^[0-9a-f]{24}$"
LATENT_ID = re.compile(LATENT_ID_PATTERN)
FORMAT = "dcgan-faces latent v1"
MAX_FILE_BYTES = 256 * 1024  # nz up to 4096 floats as JSON text, with room to spare
MAX_NZ = 4096
MAX_ABS = 1000.0  # no trained G expects noise this far out; a stored value past it is damage


class LatentNotFound(Exception):
    """No latent with that ID on this server (never stored, pruned, or damaged); the message says which."""


@dataclass(frozen=True)
class StoredLatent:
    id: str
    job_id: str
    epoch: int
    checkpoint: str  # the checkpoint file's name, e.g. epoch-0010.pt
    checksum: str  # its generator's content checksum (model/provenance.py)
    z: torch.Tensor  # (nz,) float32
    psnr: float  # of the face it draws against the picture it was projected from

    @property
    def nz(self) -> int:
        return self.z.numel()

    def noise(self) -> torch.Tensor:
        """The latent as G takes it: (1, nz, 1, 1)."""
        return self.z.clone().view(1, self.nz, 1, 1)


def latent_id(checksum: str, z: torch.Tensor) -> str:
    """The ID of latent `z` (float32) on the generator whose checksum is `checksum`."""
    raw = z.detach().to(torch.float32).contiguous().cpu().numpy().astype("<f4").tobytes()
    return hashlib.sha256(checksum.encode() + b"|" + raw).hexdigest()[:24]


class LatentStore:
    def __init__(self, folder: Path, max_count: int) -> None:
        self.folder = Path(folder)
        self.max_count = max_count
        self._lock = threading.Lock()  # one save-and-prune at a time in this process

    def _path(self, latent_id: str) -> Path:
        return self.folder / f"{latent_id}.json"

    def save(self, job_id: str, epoch: int, checkpoint: str, checksum: str, z: torch.Tensor,
             psnr: float) -> StoredLatent:
        z = z.detach().to(torch.float32).flatten().contiguous().cpu()
        lid = latent_id(checksum, z)
        doc = {"format": FORMAT, "id": lid, "job_id": job_id, "epoch": epoch, "checkpoint": checkpoint,
               "checksum": checksum, "nz": z.numel(), "psnr": round(float(psnr), 3),
               "z": [float(v) for v in z.tolist()]}  # a float32 prints exactly as a float64
        with self._lock:
            atomic_write_bytes(self._path(lid), json.dumps(doc).encode())
            self._prune()
        return StoredLatent(lid, job_id, epoch, checkpoint, checksum, z, round(float(psnr), 3))

    def _prune(self) -> None:
        """Keep the newest max_count files (by modification time: a re-saved latent is new again)."""
        try:
            entries = [e for e in os.scandir(self.folder)
                       if e.name.endswith(".json") and TEMP_MARK not in e.name]
        except OSError:
            return
        if len(entries) <= self.max_count:
            return
        def mtime(e: os.DirEntry) -> int:
            try:
                return e.stat(follow_symlinks=False).st_mtime_ns
            except OSError:
                return 0
        for e in sorted(entries, key=mtime)[:len(entries) - self.max_count]:
            with contextlib.suppress(OSError):
                os.unlink(e.path)

    def exists(self, latent_id: str) -> bool:
        return self._path(latent_id).is_file()

    def load(self, latent_id: str) -> StoredLatent:
        """The stored latent, or LatentNotFound saying why (missing or damaged)."""
        if not LATENT_ID.match(latent_id):
            raise LatentNotFound(f"{latent_id!r} is not a latent ID (24 hex digits)")
        try:
            data = read_bounded(self._path(latent_id), MAX_FILE_BYTES)
        except FileNotFoundError:
            raise LatentNotFound(f"no latent {latent_id} on this server (never projected here, or pruned: "
                                 "project the picture again)") from None
        except OSError:
            raise self._damaged(latent_id, "unreadable") from None
        try:
            return _parse(latent_id, json.loads(data))
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            raise self._damaged(latent_id, str(exc)[:200] or type(exc).__name__) from None

    @staticmethod
    def _damaged(latent_id: str, why: str) -> LatentNotFound:
        return LatentNotFound(f"latent {latent_id} is damaged on this server ({why}); project the picture again")


def _text(doc: dict, key: str, limit: int = 200) -> str:
    value = doc[key]
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise ValueError(f"bad {key}")
    return value


def _parse(lid: str, doc: object) -> StoredLatent:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError("not a latent file")
    epoch, nz, psnr, values = doc["epoch"], doc["nz"], doc["psnr"], doc["z"]
    if not isinstance(epoch, int) or isinstance(epoch, bool) or not 0 <= epoch <= 10**7:
        raise ValueError("bad epoch")
    if not isinstance(nz, int) or isinstance(nz, bool) or not 1 <= nz <= MAX_NZ:
        raise ValueError("bad nz")
    if not isinstance(values, list) or len(values) != nz:
        raise ValueError("z does not have nz values")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
               and abs(v) <= MAX_ABS for v in values):
        raise ValueError("z holds a value that is not a finite number")
    if not isinstance(psnr, (int, float)) or isinstance(psnr, bool) or not math.isfinite(psnr):
        raise ValueError("bad psnr")
    z = torch.tensor(values, dtype=torch.float32)
    checksum = _text(doc, "checksum")
    if latent_id(checksum, z) != lid:
        raise ValueError("its content does not match its ID")
    return StoredLatent(lid, _text(doc, "job_id", 64), epoch, _text(doc, "checkpoint"), checksum, z,
                        float(psnr))
