"""Which checkpoint /generate serves when a request names no job, and why.

In this order:
  1. the pinned (job, epoch) of POST /models/default (epoch left out: that job's newest);
  2. among the succeeded jobs trained on the same data as the most recently succeeded one (the
     decoded dataset's fingerprint in each run's data.json), the kept checkpoint with the lowest
     SWD (of the generator that samples: the EMA one when the job keeps it). A job on new data
     takes over at once; a worse job on the same data does not;
  3. the newest checkpoint of the most recently succeeded job, when none of those has an SWD;
  4. when nothing has succeeded yet, the newest checkpoint of any job (a first-time user still
     sees the first job's progress).
SWD is measured at snapshot epochs, whose checkpoints pruning always keeps (also after the job
is extended past them), so the best one of a job is never pruned away.

Reading each job's metrics costs a pass over its log; the answer per job is kept until its
metrics.jsonl or data.json changes (a succeeded job's never do).
"""
from __future__ import annotations

import json
import math
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.checkpoint import list_checkpoints
from model.rundir import RunDir
from worker.records import JOB_ID, JobRecord, JobState
from worker.store import JobStore

DATA_JSON_LIMIT = 1 << 20  # data.json is a few kB; anything larger is not ours


@dataclass(frozen=True)
class Choice:
    job_id: str
    epoch: int | None  # None: the job's newest checkpoint
    reason: str  # one line for GET /models/default and the gallery
    swd: float | None = None
    data: str | None = None  # the data fingerprint the rule compared


@dataclass(frozen=True)
class _JobQuality:
    fingerprint: str | None
    best: tuple[float, int] | None  # (swd, epoch) of its best kept end-of-epoch checkpoint


def read_small_json(path: Path, limit: int = DATA_JSON_LIMIT) -> Any:
    """A small JSON file, or None: never blocks on a FIFO, never reads past `limit`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            return json.loads(f.read(limit + 1))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
        return st.st_size, st.st_mtime_ns
    except OSError:
        return None


class DefaultRule:
    def __init__(self, store: JobStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._quality: dict[str, tuple[tuple, _JobQuality]] = {}

    def quality(self, job_id: str) -> _JobQuality:
        run = RunDir(self.store.run_dir(job_id))
        key = (_stamp(run.metrics_path), _stamp(run.data_path), _stamp(run.checkpoints))
        with self._lock:
            hit = self._quality.get(job_id)
        if hit is not None and hit[0] == key:
            return hit[1]
        data = read_small_json(run.data_path)
        fp = data.get("fingerprint") if isinstance(data, dict) else None
        kept = {r.epoch for r in list_checkpoints(run.checkpoints) if r.ends_epoch}
        best = None
        for epoch, value in run.measured_epochs().items():
            if epoch in kept and (best is None or value < best[0]):
                best = (value, epoch)
        quality = _JobQuality(fp if isinstance(fp, str) and len(fp) <= 128 else None, best)
        with self._lock:
            if len(self._quality) > 4096:
                self._quality.clear()
            self._quality[job_id] = (key, quality)
        return quality

    def choose(self, pin: tuple[str, int | None] | None) -> Choice | None:
        if pin is not None:
            return Choice(pin[0], pin[1], "pinned with POST /models/default")
        done = [r for r in self.store.list() if isinstance(r, JobRecord) and r.state is JobState.SUCCEEDED
                and list_checkpoints(RunDir(self.store.run_dir(r.job_id)).checkpoints)]
        if not done:
            job = self._newest_written()
            return Choice(job, None, "the newest checkpoint of any job: no job has succeeded yet") if job else None
        newest = max(done, key=lambda r: (_finite(r.finished_at), r.job_id))
        fp = self.quality(newest.job_id).fingerprint
        same = [(q.best, r.job_id) for r in done
                if (q := self.quality(r.job_id)).best is not None and fp is not None and q.fingerprint == fp]
        if not same:
            return Choice(newest.job_id, None, f"the newest checkpoint of the last succeeded job {newest.job_id}: "
                                               "no SWD was measured on its data", data=fp)
        (swd, epoch), job_id = min(same, key=lambda x: (x[0][0], x[1]))
        jobs = len({j for _, j in same})
        return Choice(job_id, epoch, f"the lowest SWD ({swd:.1f}, epoch {epoch} of job {job_id}) among the "
                                     f"{jobs} succeeded job{'s' if jobs > 1 else ''} on the newest job's data "
                                     f"({fp[:12]})", swd=swd, data=fp)

    def _newest_written(self) -> str | None:
        runs_dir = self.store.root
        best, best_time = None, -1
        if not runs_dir.is_dir():
            return None
        for p in runs_dir.iterdir():
            if not JOB_ID.match(p.name):
                continue
            for ref in list_checkpoints(RunDir(p).checkpoints)[-1:]:
                try:
                    mtime = ref.path.stat().st_mtime_ns
                except OSError:
                    continue
                if mtime > best_time:
                    best, best_time = p.name, mtime
        return best


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _finite(value: Any) -> float:
    return float(value) if _number(value) else 0.0
