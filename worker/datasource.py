"""Where a job's images come from: a folder confined to DATA_ROOT, or the synthetic faces.

The folder is checked when the job is created (so a bad one is refused at once) and again when
a worker opens it (so a folder swapped for a symlink in between is refused too).
"""
from __future__ import annotations

import errno
from pathlib import Path
from typing import Literal

from model.data import IMAGE_EXTENSIONS, DataError, has_images
from worker.records import DataSource, FolderData, SyntheticData
from worker.settings import ServiceSettings


class DataSourceError(Exception):
    """The data a job names cannot be used; `kind` says how, the message says which and why."""

    def __init__(self, kind: Literal["missing", "outside", "empty", "invalid"], message: str) -> None:
        super().__init__(message)
        self.kind = kind


def confined_folder(data_root: Path, data_dir: str) -> Path:
    """DATA_ROOT/data_dir, resolved, if it is a folder inside DATA_ROOT that holds images."""
    try:
        root = Path(data_root).resolve()
        target = (root / data_dir).resolve(strict=False)
        if not target.is_relative_to(root):
            raise DataSourceError("outside", "data_dir resolves outside DATA_ROOT (a symlink?); refused")
        if not target.is_dir():
            raise DataSourceError("missing", f"no folder {data_dir!r} under DATA_ROOT")
        if not has_images(target):
            raise DataSourceError("empty", f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in {data_dir!r}")
    except (OSError, RuntimeError, DataError) as exc:  # ELOOP, ENAMETOOLONG, EACCES, a folder that vanished
        code = getattr(exc, "errno", None)
        why = {errno.ELOOP: "a symlink loop", errno.ENAMETOOLONG: "a name that is too long",
               errno.EACCES: "no permission"}.get(code, "it cannot be read")
        if isinstance(exc, RuntimeError):
            why = "a symlink loop"
        raise DataSourceError("invalid", f"data_dir {data_dir[:100]!r} cannot be used: {why}") from None
    return target


def folder_data(data_root: Path, data_dir: str) -> FolderData:
    """The request's data_dir as it is stored in a job: relative to DATA_ROOT, resolved."""
    target = confined_folder(data_root, data_dir)
    return FolderData(data_dir=str(target.relative_to(Path(data_root).resolve())))


def synthetic_folder(settings: ServiceSettings, count: int, seed: int) -> Path:
    """The procedural face dataset a job asked for, written once and shared by later jobs."""
    from model.synth import write_dataset

    folder = settings.synthetic_dir / f"faces-s{seed}-n{count}"
    write_dataset(folder, count, seed=seed)
    return folder


def training_folder(settings: ServiceSettings, data: DataSource) -> Path:
    """The folder a worker trains on; raises DataError (the job fails with its message)."""
    if isinstance(data, SyntheticData):
        return synthetic_folder(settings, data.synthetic_images, data.synthetic_seed)
    try:
        return confined_folder(settings.data_root, data.data_dir)
    except DataSourceError as exc:
        raise DataError(str(exc)) from None
