"""Which generator serves a request; loaded once per checkpoint, swapped without a restart, and
bounded in memory whatever the requests.

Unless a request names a job (and epoch), the model is chosen by app/default_model.py: the pin,
else the best-SWD checkpoint on the newest succeeded job's data, else that job's newest, else the
newest of any job. A checkpoint that does not load (truncated, corrupt, unsafe) is skipped for the one before it
and reported as a problem (/readyz says "degraded"); it is never a 500.

Memory: at most `max_loaded` generators are held; the answers remembered between requests are
checkpoint identities, not models. Loads run `load_concurrency` at a time with at most
`load_queue` waiting (beyond: Busy, a 503), and read only the entries serving needs.
"""
from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from app.default_model import Choice, DefaultRule
from app.schemas import ModelInfo
from model.backends import OnnxGenerator, serving_generator
from model.checkpoint import (
    SERVING_ENTRIES,
    CheckpointError,
    CheckpointRef,
    epoch_end,
    first_loadable,
    list_checkpoints,
    load_checkpoint,
    pinned_epochs,
    write_pinned_epochs,
)
from model.fsutil import atomic_write_bytes
from model.networks import Discriminator, Generator
from model.provenance import generator_checksum
from model.rundir import RunDir, epochs_text
from model.runtime import release_free_memory
from model.sampling import networks_from_checkpoint
from worker.records import JOB_ID
from worker.store import JobStore

MAX_LOADED = 3  # generators kept in memory (the newest few checkpoints, or pinned ones)
PIN_FILE = "_default_model.json"


class NoModel(Exception):
    """Nothing to generate with: the message says how to get a model."""


class BadModelRequest(Exception):
    """A job or epoch that was asked for does not exist or cannot be served."""


def checkpoint_tag(job_id: str, name: str) -> str:
    """How answers name a checkpoint (X-Checkpoint, the served model): `job_id/epoch-NNNN.pt`."""
    return f"{job_id}/{name}"


class Busy(Exception):
    """Too much work running and waiting (renders or model loads); try again shortly."""


@dataclass(frozen=True)
class Loaded:
    job_id: str
    ref: CheckpointRef
    identity: str  # changes whenever the file does: part of every ETag
    g: Generator | OnnxGenerator
    d: Discriminator | None
    backend: str = "torch"  # what runs g: part of every ETag (backends agree to ~1e-5, not bit for bit)
    checksum: str | None = None  # the served weights' content checksum (model/provenance.py)

    @property
    def tag(self) -> str:
        return checkpoint_tag(self.job_id, self.ref.name)


@dataclass(frozen=True)
class _Answer:
    """What `get(job, epoch)` resolved to, remembered for check_seconds (no model inside)."""
    at: float
    job_id: str
    identity: str
    problems: tuple[str, ...]


def torch_generator(model: Loaded, reuse: bool = True) -> tuple[Generator, str | None]:
    """The eval-mode torch G of a served model, for what needs its layers or gradients
    (directions, projection): `model.g` itself when torch serves it and `reuse`, else read again
    from its checkpoint onto the CPU (onnxruntime's G has neither). Not kept beside the served
    one: a loaded model costs one G's memory, not two. With the weights' checksum; Busy when the
    checkpoint on disk is no longer the served weights."""
    if reuse and isinstance(model.g, Generator):
        return model.g, model.checksum
    try:
        state = load_checkpoint(model.ref.path, entries=("config", "generator", "generator_ema"))
    except CheckpointError:
        raise Busy("the checkpoint changed on disk; retry") from None
    checksum = generator_checksum(state)
    if model.checksum is not None and checksum != model.checksum:
        raise Busy("the checkpoint changed on disk; retry")
    g, _ = networks_from_checkpoint(state, "cpu")
    return g, checksum


class ModelRegistry:
    def __init__(self, runs_dir: Path, device: torch.device, check_seconds: float = 1.0, *,
                 backend: str = "torch", max_loaded: int = MAX_LOADED, load_concurrency: int = 1,
                 load_queue: int = 8) -> None:
        self.runs_dir = Path(runs_dir)
        self.store = JobStore(self.runs_dir)
        self.device = device
        self.backend = backend  # "torch" or "onnxruntime" (model/backends.resolve_backend)
        self.check_seconds = check_seconds
        self.max_loaded = max_loaded
        self._lock = threading.Lock()
        self._loaded: OrderedDict[str, Loaded] = OrderedDict()
        self._bad: dict[str, str] = {}  # identity -> why it did not load
        self._answers: dict[tuple[str | None, int | None], _Answer] = {}
        self._default: tuple[float, Choice | None] = (-1e9, None)
        self._rule = DefaultRule(self.store)
        self._load_slots = threading.BoundedSemaphore(load_concurrency)
        self._load_limit = load_concurrency + load_queue
        self._loads_waiting = 0
        self._loading: dict[str, threading.Event] = {}

    # -- the pinned default --------------------------------------------------------------------
    @property
    def _pin_path(self) -> Path:
        return self.runs_dir / PIN_FILE

    def pinned(self) -> tuple[str, int | None] | None:
        try:
            pin = json.loads(self._pin_path.read_text())
            job_id, epoch = pin["job_id"], pin.get("epoch")
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not isinstance(job_id, str) or not JOB_ID.match(job_id) or not (
                epoch is None or (isinstance(epoch, int) and not isinstance(epoch, bool))):
            return None
        return job_id, epoch

    def _checkpoints_of(self, job_id: str) -> Path:
        return RunDir(self.store.run_dir(job_id)).checkpoints

    def pin(self, job_id: str, epoch: int | None) -> Loaded:
        """Make (job, epoch) the default. A pinned epoch's checkpoint is never pruned."""
        self._checkpoints(job_id)  # BadModelRequest for a job that does not exist
        folder, kept = self._checkpoints_of(job_id), set()
        if epoch is not None:  # protect it first, so pruning cannot remove it while we look
            kept = pinned_epochs(folder)
            write_pinned_epochs(folder, kept | {epoch})
        try:
            loaded = self.get(job_id, epoch)  # refuses what cannot be served
        except BaseException:
            if epoch is not None and epoch not in kept:
                write_pinned_epochs(folder, pinned_epochs(folder) - {epoch})
            raise
        previous = self.pinned()
        atomic_write_bytes(self._pin_path, json.dumps({"job_id": job_id, "epoch": epoch}).encode())
        if previous is not None and previous != (job_id, epoch):
            self._release_pin(*previous)
        self._forget_answers()
        return loaded

    def unpin(self) -> None:
        previous = self.pinned()
        self._pin_path.unlink(missing_ok=True)
        if previous is not None:
            self._release_pin(*previous)
        self._forget_answers()

    def forget_job(self, job_id: str) -> None:
        """A job was deleted: drop its pin and its loaded models."""
        pin = self.pinned()
        if pin is not None and pin[0] == job_id:
            self._pin_path.unlink(missing_ok=True)
        with self._lock:
            for identity in [i for i in self._loaded if i.startswith(f"{job_id}/")]:
                del self._loaded[identity]
        self._forget_answers()

    def _release_pin(self, job_id: str, epoch: int | None) -> None:
        if epoch is not None:
            folder = self._checkpoints_of(job_id)
            if folder.is_dir():
                write_pinned_epochs(folder, pinned_epochs(folder) - {epoch})

    def _forget_answers(self) -> None:
        """This process answers with the new default at once (others within check_seconds)."""
        with self._lock:
            self._answers.clear()
            self._default = (-1e9, None)

    # -- choosing ------------------------------------------------------------------------------
    def _checkpoints(self, job_id: str) -> list[CheckpointRef]:
        if not isinstance(job_id, str) or not JOB_ID.match(job_id) or not (self.runs_dir / job_id).is_dir():
            raise BadModelRequest(f"no job {job_id!r}")
        return list_checkpoints(self._checkpoints_of(job_id))

    def default_choice(self) -> Choice | None:
        """What serves when no job is named (see app/default_model.py), re-checked every
        check_seconds."""
        checked_at, choice = self._default
        if time.monotonic() - checked_at < self.check_seconds:
            return choice
        choice = self._rule.choose(self.pinned())
        self._default = (time.monotonic(), choice)
        return choice

    def cached(self, job_id: str | None = None, epoch: int | None = None) -> Loaded | None:
        """The model `get` gave for the same question less than check_seconds ago, if it is
        still loaded; no I/O, so the event loop may call it."""
        answer = self._answers.get((job_id, epoch))
        if answer is None or time.monotonic() - answer.at >= self.check_seconds:
            return None
        with self._lock:
            return self._loaded.get(answer.identity)

    def get(self, job_id: str | None = None, epoch: int | None = None) -> Loaded:
        """The generator for (job, epoch); defaults as described in the module docstring.
        NoModel when the default has nothing to serve; BadModelRequest when a named job or
        epoch cannot be served; Busy when too many loads are waiting. Blocking."""
        loaded, problems = self._resolve(job_id, epoch)
        with self._lock:
            if len(self._answers) > 1024:  # bounded: (job, epoch) pairs come from requests
                self._answers.clear()
            self._answers[(job_id, epoch)] = _Answer(time.monotonic(), loaded.job_id, loaded.identity,
                                                     tuple(problems))
        return loaded

    def status(self) -> tuple[Loaded, list[str]]:
        """The default model and the damaged checkpoints skipped to reach it (for /readyz)."""
        return self._resolve(None, None)

    def describe(self, model: Loaded) -> ModelInfo:
        """The default model as GET /models/default tells it: which checkpoint, and why."""
        choice = self.default_choice()
        if choice is None or choice.job_id != model.job_id:  # the default moved since it was loaded
            reason, swd = "the default model when it was asked for", None
        elif choice.epoch is not None and choice.epoch != model.ref.epoch:
            reason, swd = f"{choice.reason}; epoch {choice.epoch} did not load, so the job's newest", None
        else:
            reason, swd = choice.reason, choice.swd
        return ModelInfo(job_id=model.job_id, checkpoint=model.ref.name, epoch=model.ref.epoch,
                         pinned=self.pinned() is not None, reason=reason, swd=swd)

    def _resolve(self, job_id: str | None, epoch: int | None) -> tuple[Loaded, list[str]]:
        missing = NoModel if job_id is None else BadModelRequest
        if job_id is None:
            choice = self.default_choice()
            if choice is None:
                raise NoModel("no trained model yet: start a job with POST /train (or `make run`, "
                              "which queues a demo job) and try again after its first epoch")
            if epoch is None and choice.epoch is not None and self.pinned() is None:
                try:  # the best checkpoint, or the job's newest should that one not load
                    return self._resolve(choice.job_id, choice.epoch)
                except BadModelRequest as exc:
                    loaded, problems = self._resolve(choice.job_id, None)
                    return loaded, [str(exc), *problems]
            job_id, epoch = choice.job_id, epoch if epoch is not None else choice.epoch
        refs = self._checkpoints(job_id)
        if epoch is not None:
            end = epoch_end(refs, epoch)
            if end is None:
                have = epochs_text(r.epoch for r in refs if r.ends_epoch)
                raise BadModelRequest(f"job {job_id} has no checkpoint for epoch {epoch}; its epochs: {have}")
            refs = [end]
        ref, loaded, problems = first_loadable(reversed(refs), lambda r: self._load(job_id, r))
        problems = [f"{job_id}/{p}" for p in problems]
        if loaded is not None:
            return loaded, problems
        if problems:
            raise missing(f"no loadable checkpoint for job {job_id}: {'; '.join(problems)}")
        raise missing(f"job {job_id} has no checkpoint yet; try again after its first epoch")

    # -- loading -------------------------------------------------------------------------------
    def _load(self, job_id: str, ref: CheckpointRef) -> Loaded:
        try:
            st = ref.path.stat()
        except OSError:
            raise CheckpointError(f"{ref.name} vanished") from None
        identity = f"{checkpoint_tag(job_id, ref.name)}/{st.st_size}/{st.st_mtime_ns}"
        while True:
            with self._lock:
                if identity in self._loaded:
                    self._loaded.move_to_end(identity)
                    return self._loaded[identity]
                if identity in self._bad:
                    raise CheckpointError(self._bad[identity])
                other = self._loading.get(identity)
                if other is None:
                    if self._loads_waiting >= self._load_limit:
                        raise Busy()
                    self._loads_waiting += 1
                    self._loading[identity] = threading.Event()
                    break
            other.wait()  # someone else is loading this very file: use their result
        try:
            with self._load_slots:
                try:
                    loaded = self._read(job_id, ref, identity)
                finally:
                    release_free_memory()  # the mapped file and the copies made while building the nets
            with self._lock:
                self._loaded[identity] = loaded
                while len(self._loaded) > self.max_loaded:
                    self._loaded.popitem(last=False)
            return loaded
        finally:
            with self._lock:
                self._loads_waiting -= 1
                self._loading.pop(identity).set()

    def _read(self, job_id: str, ref: CheckpointRef, identity: str) -> Loaded:
        try:
            state = load_checkpoint(ref.path, entries=SERVING_ENTRIES)
            g, d = networks_from_checkpoint(state, self.device, with_discriminator=True)
            g = serving_generator(g, self.backend)
            checksum = generator_checksum(state)
        except CheckpointError as exc:
            self._remember_bad(identity, str(exc))
            raise
        except Exception as exc:  # shapes that do not fit, a config from a future version...
            msg = f"{ref.name}: unusable checkpoint ({type(exc).__name__})"
            self._remember_bad(identity, msg)
            raise CheckpointError(msg) from None
        return Loaded(job_id, ref, identity, g, d, self.backend, checksum)

    def _remember_bad(self, identity: str, why: str) -> None:
        with self._lock:
            if len(self._bad) > 1024:
                self._bad.clear()
            self._bad[identity] = why
