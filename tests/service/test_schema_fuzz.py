"""Schemathesis against the running app's own OpenAPI schema: every phase, with and without
the token. Zero failures means: no 5xx, every status code and media type documented, every
schema-valid request accepted and every invalid one refused."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from model.train import train
from tests.helpers import tiny_config, write_blob_images
from tests.service.stack import TOKEN, Stack

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """An app (no worker: queued jobs just wait) serving a small trained model."""
    stack = Stack(tmp_path_factory.mktemp("fuzz"), redis_url=None, MAX_ACTIVE_JOBS="5")
    data = write_blob_images(stack.data / "faces", 32)
    train(tiny_config(epochs=2, snapshot_epochs=(1, 2)), stack.runs / "20260101-000000-00000a",
          data_dir=data, cache_dir=stack.folder / "cache")
    url = stack.start_app()
    yield stack, url
    stack.stop()


@pytest.mark.parametrize("authenticated", [True, False], ids=["with token", "without token"])
def test_the_schema_holds_under_fuzzing(served, authenticated, tmp_path):
    stack, url = served
    args = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(HERE / "schemathesis.toml"), "run",
            f"{url}/openapi.json", "--checks", "all",
            "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", "40", "--seed", "7",
            "--no-color", "--generation-database", "none", "--request-timeout", "60", "--workers", "1"]
    if authenticated:
        args += ["-H", f"Authorization: Bearer {TOKEN}"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    report = r.stdout[-6000:]
    assert r.returncode == 0, report
    assert "Selected: 27/27" in r.stdout and "Tested: 27" in r.stdout, report
