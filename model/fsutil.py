"""Crash-safe file writes: a reader sees the old file or the whole new one, never a part."""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

TEMP_MARK = ".tmp-"


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: Path, make_parents: bool = True) -> Iterator[BinaryIO]:
    """Write to a temp file beside `path`; on success fsync it, rename it over `path` and fsync
    the folder. On any error the temp file is removed and `path` is untouched. With
    `make_parents=False` a missing folder is a FileNotFoundError (a deleted job's folder must
    not come back because a late write recreated it)."""
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{TEMP_MARK}")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes, make_parents: bool = True) -> None:
    with atomic_open(path, make_parents) as f:
        f.write(data)


class NotARegularFile(OSError):
    """A path that had to be a plain file is a FIFO, a device, a folder or a socket."""


@contextlib.contextmanager
def open_regular(path: Path) -> Iterator[BinaryIO]:
    """Open a file for reading only if it is a regular file: the open never blocks (a FIFO with
    no writer would block `open()` for good; O_NONBLOCK makes it return at once) and anything
    but a regular file is refused before a byte is read (NotARegularFile)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotARegularFile(f"{Path(path).name} is not a regular file")
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        yield f


class FileTooLarge(OSError):
    """A file bigger than its reader allows."""


def read_bounded(path: Path, limit: int) -> bytes:
    """A regular file's bytes, at most `limit` of them (FileTooLarge past that), without ever
    blocking on a FIFO or reading what a growing file adds past the limit."""
    with open_regular(path) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(f"{Path(path).name} is over {limit} bytes")
    return data


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete temp files left by writers that died mid-write (only call while no writer runs)."""
    removed = []
    if not Path(folder).is_dir():
        return removed
    for p in Path(folder).iterdir():
        if p.name.startswith(".") and TEMP_MARK in p.name and p.is_file():
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed
