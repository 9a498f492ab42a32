"""Job records on disk, and the kernel locks that say who may change or train a job.

Everything about a job lives in its run directory, `RUNS_DIR/<job_id>/`, next to what
model.train writes there, so a job survives any process, broker or Redis restart:

    job.json       the record (worker/records.py), replaced atomically
    cancel         present once someone asked the job to stop
    .record.lock   flock held for the moment of a read-modify-write of job.json
    .owner.lock    flock held by the one process training the job, for as long as it trains

and beside the jobs, `RUNS_DIR/.admission.lock`: flock held while counting the active jobs and
making one more active (MAX_ACTIVE_JOBS).

Ownership is a kernel lock, not a flag: it is released the instant its process dies (SIGKILL
included), so a dead worker can never keep a job, and two live ones can never both have it.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from model.fsutil import FileTooLarge, NotARegularFile, atomic_write_bytes, read_bounded
from worker.errors import JobDamaged, JobNotFound, StoreBusy
from worker.records import ACTIVE, JOB_ID, DamagedRecord, JobRecord, now

RECORD_LOCK_WAIT = 5.0  # seconds to wait for another process's read-modify-write of a record
ADMISSION_WAIT = 10.0  # seconds a request may queue to count the active jobs and add one
_admission_threads: dict[Path, threading.Lock] = {}  # per RUNS_DIR, for the threads of this process
_admission_guard = threading.Lock()
MAX_RECORD_BYTES = 1 << 20  # a job.json is a few KB; anything this big is not one of ours


@dataclass
class Lease:
    """Exclusive ownership of a job while training it; `release()` or process death ends it."""
    job_id: str
    fd: int

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the file drops the flock
            self.fd = -1


def _flock(fd: int, wait: float) -> bool:
    """Take an exclusive flock, waiting at most `wait` seconds; False if it stayed taken."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "record"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"invalid job.json: {where}: {first['msg']}{more}"


class JobStore:
    def __init__(self, runs_dir: Path, lock_wait: float = RECORD_LOCK_WAIT) -> None:
        self.root = Path(runs_dir)
        self.lock_wait = lock_wait

    # -- paths ----------------------------------------------------------------------------
    def run_dir(self, job_id: str) -> Path:
        if not isinstance(job_id, str) or not JOB_ID.match(job_id):
            raise JobNotFound(job_id)
        return self.root / job_id

    def _record(self, job_id: str) -> Path:
        return self.run_dir(job_id) / "job.json"

    # -- records --------------------------------------------------------------------------
    def create(self, record: JobRecord) -> JobRecord:
        run = self.run_dir(record.job_id)
        self.root.mkdir(parents=True, exist_ok=True)
        run.mkdir()  # fails if the id is taken: ids are never reused
        try:
            self._write(record)
        except BaseException:
            shutil.rmtree(run, ignore_errors=True)
            raise
        return record

    def delete(self, job_id: str, keep: Callable[[JobRecord | None], None] | None = None) -> None:
        """Remove a job's folder and everything in it: first renamed out of sight (atomic, so a
        reader sees the whole job or none of it), then removed. The rename happens under the
        record lock, so no read-modify-write of the record is halfway through it; `keep(record)`
        (None for a damaged record) is called under that lock and may raise to keep the job."""
        run = self.run_dir(job_id)
        trash = self.root / f".deleted-{job_id}-{secrets.token_hex(4)}"
        with self._locked(job_id):
            if keep is not None:
                try:
                    record = self.read(job_id)
                except JobDamaged:
                    record = None
                keep(record)
            try:
                os.rename(run, trash)
            except FileNotFoundError:
                return
        shutil.rmtree(trash, ignore_errors=True)

    def read(self, job_id: str) -> JobRecord:
        """The record; JobNotFound when there is none, JobDamaged when job.json is not a valid one."""
        path = self._record(job_id)
        try:  # bounded: a FIFO or a huge file in its place must not hang or flood the reader
            raw = read_bounded(path, MAX_RECORD_BYTES)
        except (FileNotFoundError, NotADirectoryError):
            raise JobNotFound(job_id) from None
        except (NotARegularFile, FileTooLarge) as exc:
            raise JobDamaged(str(exc)) from None
        except OSError as exc:
            raise JobDamaged(f"job.json is unreadable ({exc.strerror})") from None
        try:
            record = JobRecord.model_validate_json(raw)
        except ValidationError as exc:
            raise JobDamaged(_describe(exc)) from None
        if record.job_id != job_id:
            raise JobDamaged(f"job.json names another job ({record.job_id})")
        return record

    def _write(self, record: JobRecord) -> None:
        # Never makes the folder: a write that comes after a delete must not bring the job back.
        try:
            atomic_write_bytes(self._record(record.job_id), record.model_dump_json(indent=1).encode(),
                               make_parents=False)
        except (FileNotFoundError, NotADirectoryError):
            raise JobNotFound(record.job_id) from None

    @contextlib.contextmanager
    def _locked(self, job_id: str) -> Iterator[None]:
        folder = self.run_dir(job_id)
        try:
            fd = os.open(folder / ".record.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except (FileNotFoundError, NotADirectoryError):
            raise JobNotFound(job_id) from None
        try:
            if not _flock(fd, self.lock_wait):
                raise StoreBusy(f"job {job_id} is being updated by another process; try again")
            yield
        finally:
            os.close(fd)

    def update(self, job_id: str, transition: Callable[[JobRecord], JobRecord]) -> JobRecord:
        """Read, apply `transition` (worker/lifecycle.py; it may raise JobConflict), write, all
        under the record lock. A transition that changes nothing writes nothing."""
        with self._locked(job_id):
            before = self.read(job_id)
            after = transition(before)
            if after == before:
                return before
            after = after.model_copy(update={"updated_at": now()})
            self._write(after)
            return after

    def list(self) -> list[JobRecord | DamagedRecord]:
        """All jobs, newest first; a record that cannot be read is listed as damaged."""
        try:
            names = sorted((n for n in os.listdir(self.root) if JOB_ID.match(n)), reverse=True)
        except FileNotFoundError:
            return []
        out: list[JobRecord | DamagedRecord] = []
        for name in names:
            try:
                out.append(self.read(name))
            except JobNotFound:
                continue  # being created or deleted right now
            except JobDamaged as exc:
                out.append(DamagedRecord(job_id=name, error=str(exc), updated_at=self._mtime(name)))
        return out

    def _mtime(self, job_id: str) -> float:
        try:
            return self._record(job_id).stat().st_mtime
        except OSError:
            return 0.0

    def count_active(self) -> int:
        return sum(1 for r in self.list() if r.state in ACTIVE)

    @contextlib.contextmanager
    def admission(self, wait: float = ADMISSION_WAIT) -> Iterator[None]:
        """Held while counting the active jobs and making one more job active (a new job, a
        resume), by every thread and process on this RUNS_DIR, so that no count goes stale
        before the job it admitted is written: MAX_ACTIVE_JOBS holds however many requests
        arrive at once. The threads of one process take turns on a lock of their own (woken as
        it is released), the processes on `RUNS_DIR/.admission.lock`; StoreBusy after `wait`."""
        with _admission_guard:
            threads = _admission_threads.setdefault(self.root.absolute(), threading.Lock())
        deadline = time.monotonic() + wait
        if not threads.acquire(timeout=wait):
            raise StoreBusy("too many jobs are being started at once; try again")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / ".admission.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                if not _flock(fd, max(0.0, deadline - time.monotonic())):
                    raise StoreBusy("too many jobs are being started at once; try again")
                yield
            finally:
                os.close(fd)
        finally:
            threads.release()

    # -- cancel flag ----------------------------------------------------------------------
    def request_cancel(self, job_id: str) -> None:
        try:
            atomic_write_bytes(self.run_dir(job_id) / "cancel", b"", make_parents=False)
        except (FileNotFoundError, NotADirectoryError):
            raise JobNotFound(job_id) from None

    def clear_cancel(self, job_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.run_dir(job_id) / "cancel").unlink()

    def cancel_requested(self, job_id: str) -> bool:
        return (self.run_dir(job_id) / "cancel").exists()

    # -- ownership ------------------------------------------------------------------------
    def try_own(self, job_id: str) -> Lease | None:
        """Take the job's owner lock without waiting; None when another process holds it."""
        try:
            fd = os.open(self.run_dir(job_id) / ".owner.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except (FileNotFoundError, NotADirectoryError):
            raise JobNotFound(job_id) from None
        if not _flock(fd, 0):
            os.close(fd)
            return None
        with contextlib.suppress(OSError):  # the pid is for people reading the file; a full disk may refuse it
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
    def _key_path(self, key: str) -> Path:
        return self.root / "_idempotency" / hashlib.sha256(key.encode()).hexdigest()[:40]

    def claim_idempotency_key(self, key: str, job_id: str, fingerprint: str) -> tuple[str, str] | None:
        """Bind `key` to (`job_id`, the request's `fingerprint`) unless it is bound already;
        returns what it was bound to before, or None if this call bound it. Atomic across
        processes (O_EXCL create)."""
        path = self._key_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            for _ in range(50):  # the winner may still be writing what it bound
                bound = self._read_key(path)
                if bound is not None:
                    return bound
                time.sleep(0.01)
            return self._read_key(path) or ("", "")
        with os.fdopen(fd, "w") as f:
            f.write(f"{job_id}\n{fingerprint}\n")
            f.flush()
            os.fsync(f.fileno())
        return None

    @staticmethod
    def _read_key(path: Path) -> tuple[str, str] | None:
        try:
            lines = path.read_text().split("\n")
        except OSError:
            return None
        if len(lines) < 3:  # not completely written yet
            return None
        return lines[0], lines[1]

    def release_idempotency_key(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._key_path(key).unlink()
