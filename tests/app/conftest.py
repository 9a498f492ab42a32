"""Fixtures for the in-process app tests: `create_app(settings)` behind a TestClient, a temporary
RUNS_DIR, a fake queue, and (for the image routes) one small job trained for real."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from model.train import train
from tests.helpers import FakeQueue, tiny_config
from worker import lifecycle
from worker.records import DatasetInfo, FolderData, JobRecord, new_job_id
from worker.store import JobStore

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def make_settings(root: Path, **overrides) -> Settings:
    (root / "data").mkdir(parents=True, exist_ok=True)
    return Settings(runs_dir=root / "runs", data_root=root / "data", api_token=TOKEN, device="cpu",
                    redis_url="", model_check_seconds=0, **overrides)


@pytest.fixture
def queue() -> FakeQueue:
    return FakeQueue()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def client(settings, queue):
    with TestClient(create_app(settings, enqueue=queue)) as c:
        yield c


def trained_job(runs: Path, data: Path, epochs: int = 2, **config) -> JobRecord:
    """A succeeded job with real checkpoints (tiny nets, seconds on a CPU)."""
    cfg = tiny_config(epochs=epochs, snapshot_epochs=tuple(range(1, epochs + 1)), **config)
    store = JobStore(runs)
    rec = store.create(lifecycle.queue(new_job_id(), cfg.to_dict(), FolderData(data_dir="faces")))
    store.update(rec.job_id, lambda r: lifecycle.start(r, "test:1", 3))
    result = train(cfg, store.run_dir(rec.job_id), data_dir=data)
    dataset = DatasetInfo.model_validate(result.data)
    return store.update(rec.job_id, lambda r: lifecycle.succeed(r, dataset))


@pytest.fixture(scope="session")
def served_runs(tmp_path_factory, image_folder) -> tuple[Path, str]:
    """RUNS_DIR with one succeeded 2-epoch job; copy it before changing anything in it."""
    runs = tmp_path_factory.mktemp("served") / "runs"
    return runs, trained_job(runs, image_folder).job_id


@pytest.fixture
def served(tmp_path, served_runs, queue):
    """(client, job_id) of an app serving a private copy of the trained job."""
    runs, job_id = served_runs
    settings = make_settings(tmp_path)
    shutil.copytree(runs, settings.runs_dir)
    with TestClient(create_app(settings, enqueue=queue)) as c:
        yield c, job_id
