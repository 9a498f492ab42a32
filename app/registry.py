"""Which generator serves a request, loaded once per checkpoint and swapped without a restart.

Unless a request names a job (and epoch), the model is the one pinned with POST /models/default,
or else the newest checkpoint of the job whose checkpoints changed last. A checkpoint that does
not load (truncated, corrupt, unsafe) is skipped for the one before it and reported as a problem
(/readyz says "degraded"); it is never a 500.
"""
from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from model.checkpoint import CheckpointError, CheckpointRef, list_checkpoints, load_checkpoint
from model.fsutil import atomic_write_bytes
from model.sampling import networks_from_checkpoint
from model.networks import Discriminator, Generator
from worker.jobs import JOB_ID

LOADED_MODELS = 3  # generators kept in memory (the newest few checkpoints, or pinned ones)


class NoModel(Exception):
    """Nothing to generate with: the message says how to get a model."""


class BadModelRequest(Exception):
    """A job or epoch that was asked for does not exist."""


@dataclass(frozen=True)
class Loaded:
    job_id: str
    ref: CheckpointRef
    identity: str  # changes whenever the file does: part of every ETag
    g: Generator
    d: Discriminator | None

    @property
    def tag(self) -> str:
        return f"{self.job_id}/{self.ref.name}"


class ModelRegistry:
    def __init__(self, runs_dir: Path, device: torch.device, check_seconds: float = 1.0) -> None:
        self.runs_dir = Path(runs_dir)
        self.device = device
        self.check_seconds = check_seconds
        self._lock = threading.Lock()
        self._loaded: OrderedDict[str, Loaded] = OrderedDict()
        self._bad: dict[str, str] = {}  # identity -> why it did not load
        self._newest: tuple[float, str | None] = (0.0, None)
        self._resolved: dict[tuple[str | None, int | None], tuple[float, Loaded, list[str]]] = {}

    # -- the pinned default --------------------------------------------------------------------
    @property
    def _pin_path(self) -> Path:
        return self.runs_dir / "_default_model.json"

    def pinned(self) -> tuple[str, int | None] | None:
        try:
            pin = json.loads(self._pin_path.read_text())
            return pin["job_id"], pin.get("epoch")
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def pin(self, job_id: str, epoch: int | None) -> Loaded:
        loaded = self.get(job_id, epoch)  # refuses what cannot be served
        atomic_write_bytes(self._pin_path, json.dumps({"job_id": job_id, "epoch": epoch}).encode())
        self._resolved.clear()  # this process answers with the new default at once (others within check_seconds)
        return loaded

    # -- choosing ------------------------------------------------------------------------------
    def _checkpoints(self, job_id: str) -> list[CheckpointRef]:
        if not JOB_ID.match(job_id or "") or not (self.runs_dir / job_id).is_dir():
            raise BadModelRequest(f"no job {job_id!r}")
        return list_checkpoints(self.runs_dir / job_id / "checkpoints")

    def newest_job(self) -> str | None:
        """The job whose newest checkpoint was written last (re-checked every check_seconds)."""
        checked_at, job = self._newest
        if time.monotonic() - checked_at < self.check_seconds:
            return job
        best, best_time = None, -1
        if self.runs_dir.is_dir():
            for p in self.runs_dir.iterdir():
                if not JOB_ID.match(p.name):
                    continue
                refs = list_checkpoints(p / "checkpoints")
                for ref in refs[-1:]:
                    try:
                        mtime = ref.path.stat().st_mtime_ns
                    except OSError:
                        continue
                    if mtime > best_time:
                        best, best_time = p.name, mtime
        self._newest = (time.monotonic(), best)
        return best

    def cached(self, job_id: str | None = None, epoch: int | None = None) -> Loaded | None:
        """The answer `get` gave for the same question less than check_seconds ago, without any
        I/O (so the event loop may call it); None when it has to be worked out again."""
        hit = self._resolved.get((job_id, epoch))
        if hit is not None and time.monotonic() - hit[0] < self.check_seconds:
            return hit[1]
        return None

    def get(self, job_id: str | None = None, epoch: int | None = None) -> Loaded:
        """The generator for (job, epoch); defaults as described in the module docstring.
        NoModel when the default has nothing to serve; BadModelRequest when a named job or
        epoch cannot be served. Blocking (file system, checkpoint loads)."""
        loaded, problems = self._resolve(job_id, epoch)
        if len(self._resolved) > 1024:  # bounded: (job, epoch) pairs come from requests
            self._resolved.clear()
        self._resolved[(job_id, epoch)] = (time.monotonic(), loaded, problems)
        return loaded

    def status(self) -> tuple[Loaded, list[str]]:
        """The default model and the damaged checkpoints skipped to reach it (for /readyz)."""
        loaded, problems = self._resolve(None, None)
        return loaded, problems

    def _resolve(self, job_id: str | None, epoch: int | None) -> tuple[Loaded, list[str]]:
        missing = NoModel if job_id is None else BadModelRequest
        if job_id is None:
            pin = self.pinned()
            if pin is not None:
                job_id, pinned_epoch = pin
                epoch = epoch if epoch is not None else pinned_epoch
            else:
                job_id = self.newest_job()
        if job_id is None:
            raise NoModel("no trained model yet: start a job with POST /train (or `make run`, "
                          "which queues a demo job) and try again after its first epoch")
        refs = self._checkpoints(job_id)
        if epoch is not None:
            refs = [r for r in refs if r.epoch == epoch and r.batch == 0]
            if not refs:
                raise BadModelRequest(f"job {job_id} has no checkpoint for epoch {epoch}")
        problems = []
        for ref in reversed(refs):
            try:
                return self._load(job_id, ref), problems
            except CheckpointError as exc:
                problems.append(f"{job_id}/{exc}")
        if problems:
            raise missing(f"no loadable checkpoint for job {job_id}: {'; '.join(problems)}")
        raise missing(f"job {job_id} has no checkpoint yet; try again after its first epoch")

    def _load(self, job_id: str, ref: CheckpointRef) -> Loaded:
        try:
            st = ref.path.stat()
        except OSError:
            raise CheckpointError(f"{ref.name} vanished") from None
        identity = f"{job_id}/{ref.name}/{st.st_size}/{st.st_mtime_ns}"
        with self._lock:
            if identity in self._loaded:
                self._loaded.move_to_end(identity)
                return self._loaded[identity]
            if identity in self._bad:
                raise CheckpointError(self._bad[identity])
        try:
            state = load_checkpoint(ref.path)
            g, d = networks_from_checkpoint(state, self.device, with_discriminator=True)
        except CheckpointError as exc:
            with self._lock:
                self._bad[identity] = str(exc)
            raise
        except Exception as exc:  # shapes that do not fit, a config from a future version...
            msg = f"{ref.name}: unusable checkpoint ({type(exc).__name__})"
            with self._lock:
                self._bad[identity] = msg
            raise CheckpointError(msg) from None
        loaded = Loaded(job_id, ref, identity, g, d)
        with self._lock:
            self._loaded[identity] = loaded
            while len(self._loaded) > LOADED_MODELS:
                self._loaded.popitem(last=False)
        return loaded
