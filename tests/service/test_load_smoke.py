"""A short version of `make load`: concurrent /generate clients while a job trains."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.service.stack import REPO

pytestmark = pytest.mark.slow


def test_concurrent_generate_during_training_has_no_errors_and_bounded_memory():
    r = subprocess.run([sys.executable, "benchmarks/load_bench.py", "--clients", "8", "--duration", "6",
                        "--max-rss-mb", "2500"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert "errors=0" in r.stdout and "training job meanwhile: running" in r.stdout
