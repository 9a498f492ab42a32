"""Job records on disk: the contract between the app (creates, cancels, resumes, reads) and the
worker (runs, reports progress).

Everything about a job lives in its run directory, `RUNS_DIR/<job_id>/`, next to what
model.train writes there, so a job survives any process, broker or Redis restart:

    job.json       the record: state, progress, error, config (replaced atomically)
    cancel         present once someone asked the job to stop
    .record.lock   flock held for the few microseconds of a read-modify-write of job.json
    .owner.lock    flock held by the one process training the job, for as long as it trains

Ownership is a kernel lock, not a flag: it is released the instant its process dies (SIGKILL
included), so a dead worker can never keep a job, and two live ones can never both have it.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from model.fsutil import atomic_write_bytes

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE = frozenset({"queued", "running"})
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
JOB_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")


class JobNotFound(KeyError):
    pass


class JobConflict(Exception):
    """The job is in a state that does not allow what was asked (cancel a finished job, ...)."""


def new_job_id() -> str:
    """Sortable by creation time, unguessable enough, and safe as a folder name."""
    return f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def now() -> float:
    return round(time.time(), 3)


@dataclass
class Lease:
    """Exclusive ownership of a job while training it; `release()` or process death ends it."""
    job_id: str
    fd: int

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the file drops the flock
            self.fd = -1


class JobStore:
    def __init__(self, runs_dir: Path) -> None:
        self.root = Path(runs_dir)

    # -- paths ----------------------------------------------------------------------------
    def run_dir(self, job_id: str) -> Path:
        if not isinstance(job_id, str) or not JOB_ID.match(job_id):
            raise JobNotFound(job_id)
        return self.root / job_id

    def _record(self, job_id: str) -> Path:
        return self.run_dir(job_id) / "job.json"

    # -- records --------------------------------------------------------------------------
    def create(self, job_id: str, record: dict[str, Any]) -> dict[str, Any]:
        run = self.run_dir(job_id)
        self.root.mkdir(parents=True, exist_ok=True)
        run.mkdir()  # fails if the id is taken: ids are never reused
        full = {"job_id": job_id, "state": "queued", "created_at": now(), "updated_at": now(),
                "attempts": 0, "error": None, **record}
        atomic_write_bytes(self._record(job_id), _dump(full))
        return full

    def delete(self, job_id: str) -> None:
        """Remove a record that was never enqueued (the broker refused it)."""
        shutil.rmtree(self.run_dir(job_id), ignore_errors=True)

    def read(self, job_id: str) -> dict[str, Any]:
        try:
            return json.loads(self._record(job_id).read_bytes())
        except FileNotFoundError:
            raise JobNotFound(job_id) from None
        except ValueError:
            raise JobNotFound(job_id) from None  # a record is replaced atomically; never torn

    def exists(self, job_id: str) -> bool:
        try:
            return self._record(job_id).is_file()
        except JobNotFound:
            return False

    @contextlib.contextmanager
    def _locked(self, job_id: str) -> Iterator[None]:
        path = self.run_dir(job_id) / ".record.lock"
        if not path.parent.is_dir():
            raise JobNotFound(job_id)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def update(self, job_id: str, change: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
               **fields: Any) -> dict[str, Any]:
        """Read-modify-write under the record lock. `change(record)` may raise JobConflict,
        or return a dict of fields to set; `fields` are set as well."""
        with self._locked(job_id):
            rec = self.read(job_id)
            changes = (change(rec) if change is not None else None) or {}
            if not changes and not fields:
                return rec
            rec.update(changes)
            rec.update(fields)
            rec["updated_at"] = now()
            atomic_write_bytes(self._record(job_id), _dump(rec))
            return rec

    def list(self) -> list[dict[str, Any]]:
        """All job records, newest first."""
        if not self.root.is_dir():
            return []
        out = []
        for name in sorted(os.listdir(self.root), reverse=True):
            if JOB_ID.match(name):
                with contextlib.suppress(JobNotFound):
                    out.append(self.read(name))
        return out

    def count_active(self) -> int:
        return sum(1 for r in self.list() if r["state"] in ACTIVE)

    # -- cancel flag ----------------------------------------------------------------------
    def request_cancel(self, job_id: str) -> None:
        atomic_write_bytes(self.run_dir(job_id) / "cancel", b"")

    def clear_cancel(self, job_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.run_dir(job_id) / "cancel").unlink()

    def cancel_requested(self, job_id: str) -> bool:
        return (self.run_dir(job_id) / "cancel").exists()

    # -- ownership ------------------------------------------------------------------------
    def try_own(self, job_id: str) -> Lease | None:
        """Take the job's owner lock without waiting; None when another process holds it."""
        fd = os.open(self.run_dir(job_id) / ".owner.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return Lease(job_id, fd)

    def is_owned(self, job_id: str) -> bool:
        lease = self.try_own(job_id)
        if lease is None:
            return True
        lease.release()
        return False

    # -- idempotency ----------------------------------------------------------------------
    def claim_idempotency_key(self, key: str, job_id: str) -> str | None:
        """Bind `key` to `job_id` unless it is bound already; returns the job it was bound to
        before, or None if this call bound it. Atomic across processes (O_EXCL create)."""
        folder = self.root / "_idempotency"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / hashlib.sha256(key.encode()).hexdigest()[:40]
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            for _ in range(50):  # the winner may still be writing its job id
                text = path.read_text().strip()
                if text:
                    return text
                time.sleep(0.01)
            return path.read_text().strip() or None
        with os.fdopen(fd, "w") as f:
            f.write(job_id)
            f.flush()
            os.fsync(f.fileno())
        return None

    def release_idempotency_key(self, key: str) -> None:
        path = self.root / "_idempotency" / hashlib.sha256(key.encode()).hexdigest()[:40]
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _dump(record: dict[str, Any]) -> bytes:
    return json.dumps(record, indent=1, sort_keys=True).encode()
