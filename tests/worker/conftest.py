"""Fixtures for the in-process worker tests: a temporary RUNS_DIR and DATA_ROOT, no broker."""
from __future__ import annotations

import pytest

from tests.helpers import FakeQueue
from worker.settings import ServiceSettings
from worker.store import JobStore


@pytest.fixture
def settings(tmp_path) -> ServiceSettings:
    (tmp_path / "data").mkdir()
    return ServiceSettings(runs_dir=tmp_path / "runs", data_root=tmp_path / "data", device="cpu",
                           redis_url="", max_attempts=3)


@pytest.fixture
def store(settings) -> JobStore:
    return JobStore(settings.runs_dir, lock_wait=0.3)


@pytest.fixture
def queue() -> FakeQueue:
    return FakeQueue()
