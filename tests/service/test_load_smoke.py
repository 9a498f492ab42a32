"""A short version of `make load`: concurrent /generate clients while a job trains."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.service.stack import REPO

pytestmark = pytest.mark.slow


def test_concurrent_generate_during_training_has_no_errors_and_bounded_memory(tmp_path):
    out = tmp_path / "load.json"
    r = subprocess.run([sys.executable, "benchmarks/load_bench.py", "--clients", "8", "--duration", "6",
                        "--max-rss-mb", "2500", "--json", str(out)], cwd=REPO, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["errors"] == 0 and figures["requests"] > 50
    assert figures["status_counts"].get("200", 0) > 0 and figures["hits"] > 0 and figures["misses"] > 0
    assert figures["rss_mb"]["max"] < 2500
    assert figures["training"]["state"] == "running" and figures["training"]["step"] > 0
