"""Checkpoint files: naming, atomic saving, safe loading, fallback to the last good one, pruning.

A checkpoint is one dict of tensors and plain values (never pickled modules), loaded with
`torch.load(weights_only=True)`, so a file that tries to run code on load is refused. Each
top-level entry carries its own CRC32, so a reader that needs only some entries (the app needs
the generators, not the optimiser states) maps the file and reads and checks just those.
"""
from __future__ import annotations

import io
import json
import logging
import re
import threading
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import torch

from model.fsutil import atomic_open, atomic_write_bytes, remove_stale_temp_files

FORMAT = "dcgan-faces-checkpoint/2"  # /2: one checksum per entry; /1 (one for all) still loads
_FORMATS = ("dcgan-faces-checkpoint/1", FORMAT)
PINNED_FILE = ".pinned.json"  # epochs a user pinned in a checkpoints folder: never pruned
# What sampling needs from a checkpoint; everything else (optimiser states, RNG) is for training.
SERVING_ENTRIES = ("config", "epoch", "step", "generator", "generator_ema", "discriminator")
_NAME = re.compile(r"^epoch-(\d{4,})(?:-b(\d{6,}))?\.pt$")

log = logging.getLogger(__name__)


class CheckpointError(Exception):
    """A file is not a usable checkpoint (truncated, corrupt, foreign or unsafe)."""


@dataclass(frozen=True, order=True)
class CheckpointRef:
    """Where a checkpoint sits in training: `epoch` completed epochs plus `batch` batches of
    the next one (0 for an end-of-epoch checkpoint)."""
    epoch: int
    batch: int
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def ends_epoch(self) -> bool:
        """Written at an epoch's end (a mid-epoch one is written when a run stops)."""
        return self.batch == 0


def epoch_end(refs: Iterable[CheckpointRef], epoch: int) -> CheckpointRef | None:
    """The end-of-epoch checkpoint of `epoch` among `refs`, if there is one."""
    return next((r for r in refs if r.epoch == epoch and r.ends_epoch), None)


def checkpoint_name(epoch: int, batch: int = 0) -> str:
    return f"epoch-{epoch:04d}.pt" if batch == 0 else f"epoch-{epoch:04d}-b{batch:06d}.pt"


def list_checkpoints(folder: Path) -> list[CheckpointRef]:
    """Checkpoints in `folder`, oldest first (by training position, not by file time)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    refs = []
    for p in folder.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_file():
            refs.append(CheckpointRef(int(m.group(1)), int(m.group(2) or 0), p))
    return sorted(refs)


def content_checksum(obj: Any) -> int:
    """CRC32 over every tensor's bytes and every plain value, in a fixed order. torch.load does
    not notice a flipped bit inside tensor data (the zip entries' CRCs are not checked), so a
    checkpoint carries this and `load_checkpoint` compares it."""
    crc = 0

    def walk(o: Any) -> None:
        nonlocal crc
        if isinstance(o, torch.Tensor):
            t = o.detach().cpu().contiguous()
            crc = zlib.crc32(f"{t.dtype}{tuple(t.shape)}".encode(), crc)
            crc = zlib.crc32(memoryview(t.reshape(-1).view(torch.uint8).numpy()) if t.numel() else b"", crc)
        elif isinstance(o, dict):
            for k in sorted(o, key=str):
                crc = zlib.crc32(repr(k).encode(), crc)
                walk(o[k])
        elif isinstance(o, (list, tuple)):
            crc = zlib.crc32(f"[{len(o)}".encode(), crc)
            for v in o:
                walk(v)
        else:
            crc = zlib.crc32(repr(o).encode(), crc)

    walk(obj)
    return crc


class _RecordingWriter(io.RawIOBase):
    """torch.save turns a failed write (a full disk, say) into a vague RuntimeError; this keeps
    the original OSError so the caller can say what really happened."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.error: OSError | None = None

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as exc:
            self.error = exc
            raise


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write atomically: temp file in the same folder, fsync, rename, fsync the folder."""
    state = {"format": FORMAT, **state}
    state["checksums"] = {k: content_checksum(v) for k, v in state.items()}
    with atomic_open(Path(path)) as f:
        writer = _RecordingWriter(f)
        try:
            torch.save(state, writer)
        except RuntimeError:
            if writer.error is not None:
                raise writer.error from None
            raise


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu",
                    entries: Iterable[str] | None = None) -> dict[str, Any]:
    """Load and check one checkpoint; raise CheckpointError saying what is wrong.

    With `entries`, only those entries are checked and returned, and the file is memory-mapped,
    so the rest of it is never read into memory.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True, mmap=entries is not None)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except Exception as exc:  # torch raises several types for truncated/corrupt/unsafe files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path.name}: not a loadable checkpoint ({first[:200]})") from None
    if not isinstance(state, dict) or state.get("format") not in _FORMATS:
        raise CheckpointError(f"{path.name}: not a dcgan-faces checkpoint")
    for key in ("generator", "config", "epoch", "step"):
        if key not in state:
            raise CheckpointError(f"{path.name}: checkpoint lacks '{key}'")
    if "checksums" in state:
        sums = state.pop("checksums")
        wanted = [k for k in (entries if entries is not None else list(state)) if k in state]
        if not isinstance(sums, dict) or any(sums.get(k) != content_checksum(state[k]) for k in wanted):
            raise CheckpointError(f"{path.name}: checksum mismatch, the file is damaged")
        return {k: state[k] for k in wanted}
    if "checksum" not in state:
        raise CheckpointError(f"{path.name}: checkpoint lacks 'checksum'")
    expected = state.pop("checksum")  # format /1: one checksum over everything
    if content_checksum(state) != expected:
        raise CheckpointError(f"{path.name}: checksum mismatch, the file is damaged")
    return state if entries is None else {k: state[k] for k in entries if k in state}


T = TypeVar("T")


def first_loadable(refs: Iterable[CheckpointRef], load: Callable[[CheckpointRef], T]
                   ) -> tuple[CheckpointRef | None, T | None, list[str]]:
    """The first of `refs` that `load` accepts, with the problems met on the way (each
    CheckpointError's message); (None, None, problems) when none does."""
    problems: list[str] = []
    for ref in refs:
        try:
            return ref, load(ref), problems
        except CheckpointError as exc:
            log.warning("skipping checkpoint: %s", exc)
            problems.append(str(exc))
    return None, None, problems


def load_latest(folder: Path, map_location: str | torch.device = "cpu", entries: Iterable[str] | None = None
                ) -> tuple[CheckpointRef | None, dict[str, Any] | None, list[str]]:
    """The newest checkpoint that loads, with the problems met on the way.

    A truncated or corrupt newest file is reported and the one before it is used, so a crash
    while writing (or a bad disk block) costs at most one epoch.
    """
    return first_loadable(reversed(list_checkpoints(folder)),
                          lambda ref: load_checkpoint(ref.path, map_location, entries))


def pinned_epochs(folder: Path) -> set[int]:
    """End-of-epoch checkpoints in `folder` that a user pinned (pruning keeps them)."""
    try:
        epochs = json.loads((Path(folder) / PINNED_FILE).read_text())
        return {int(e) for e in epochs if isinstance(e, int) and not isinstance(e, bool)}
    except (OSError, ValueError, TypeError):
        return set()


def write_pinned_epochs(folder: Path, epochs: Iterable[int]) -> None:
    path = Path(folder) / PINNED_FILE
    epochs = sorted(set(epochs))
    if epochs:
        atomic_write_bytes(path, json.dumps(epochs).encode())
    else:
        path.unlink(missing_ok=True)


def prune_checkpoints(folder: Path, keep_last: int, keep_epochs: Iterable[int]) -> list[Path]:
    """Delete all but the newest `keep_last` checkpoints, the end-of-epoch ones in `keep_epochs`
    and the pinned ones."""
    keep_epochs = set(keep_epochs) | pinned_epochs(folder)
    refs = list_checkpoints(folder)
    removed = []
    for ref in refs[:-keep_last] if keep_last > 0 else refs:
        if ref.ends_epoch and ref.epoch in keep_epochs:
            continue
        ref.path.unlink(missing_ok=True)
        removed.append(ref.path)
    return removed


def clean_checkpoint_folder(folder: Path) -> list[Path]:
    """Remove temp files a killed writer left behind (call before training starts)."""
    return remove_stale_temp_files(Path(folder))


class CheckpointWriter:
    """Saves checkpoints on a background thread so the GPU keeps training while the disk works.

    At most one write is in flight; `submit` and `close` wait for the previous one and re-raise
    its error (disk full, say), so a failed save is never silently lost.
    """

    def __init__(self, folder: Path, keep_last: int, keep_epochs: Iterable[int]) -> None:
        self.folder = Path(folder)
        self.keep_last = keep_last
        self.keep_epochs = set(keep_epochs)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _write(self, state: dict[str, Any], path: Path) -> None:
        try:
            save_checkpoint(state, path)
            prune_checkpoints(self.folder, self.keep_last, self.keep_epochs)
        except BaseException as exc:  # re-raised in the training thread by wait()
            self._error = exc

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def submit(self, state: dict[str, Any], epoch: int, batch: int = 0, block: bool = False) -> Path:
        """Queue `state` (already copied off the training tensors) as checkpoint (epoch, batch)."""
        self.wait()
        path = self.folder / checkpoint_name(epoch, batch)
        self._thread = threading.Thread(target=self._write, args=(state, path),
                                        name="checkpoint-writer", daemon=True)
        self._thread.start()
        if block:
            self.wait()
        return path

    def close(self) -> None:
        self.wait()


def cpu_copy(obj: Any) -> Any:
    """Deep copy of nested dicts/lists of tensors onto the CPU, detached from training."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_copy(v) for v in obj)
    return obj


def load_epoch(folder: Path, epoch: int | None = None, map_location: str | torch.device = "cpu",
               entries: Iterable[str] | None = None) -> tuple[CheckpointRef, dict[str, Any]]:
    """The end-of-epoch checkpoint for `epoch`, or the newest loadable one when epoch is None."""
    refs = list_checkpoints(folder)
    if not refs:
        raise CheckpointError(f"no checkpoints in {folder}; train first")
    if epoch is None:
        ref, state, problems = load_latest(folder, map_location, entries)
        if ref is None:
            raise CheckpointError(f"no loadable checkpoint in {folder} ({'; '.join(problems)})")
        return ref, state
    ref = epoch_end(refs, epoch)
    if ref is not None:
        return ref, load_checkpoint(ref.path, map_location, entries)
    have = sorted({r.epoch for r in refs if r.ends_epoch})
    raise CheckpointError(f"no checkpoint for epoch {epoch} in {folder}; available: "
                          f"{', '.join(map(str, have)) or 'none'}")
