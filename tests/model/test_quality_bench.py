"""benchmarks/quality_bench.py's runs resume only the config that started them."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TINY = {"ngf": 8, "ndf": 8, "batch_size": 16}


def run_one(data: Path, config: dict, out: Path, budget_min: float) -> subprocess.CompletedProcess:
    # A process of its own, as the benchmark runs it: it pins torch to one thread for good.
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "quality_bench.py"), "--budget",
                           str(budget_min), "--marks", str(budget_min), "--one", str(data),
                           json.dumps(config), str(out)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})


def test_a_run_resumes_with_its_config_and_refuses_another(image_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "synthetic" / "mine"
    first = run_one(image_folder, TINY, out, 0.005)
    assert first.returncode == 0, first.stderr
    before = (out / "result.json").read_text()
    assert [r["minutes"] for r in json.loads(before)["rows"]] == [0.005]

    other = run_one(image_folder, {**TINY, "lr": 1e-3}, out, 0.01)
    assert other.returncode != 0
    assert "another config" in other.stderr and "delete" in other.stderr
    assert (out / "result.json").read_text() == before  # nothing of the other config's recorded

    again = run_one(image_folder, TINY, out, 0.01)
    assert again.returncode == 0, again.stderr
    assert "resumed" in again.stdout
    rows = json.loads((out / "result.json").read_text())["rows"]
    assert [r["minutes"] for r in rows] == [0.005, 0.01]
    assert rows[1]["step"] > rows[0]["step"]
