"""benchmarks/gpu_check.sh --dry-run: the whole GPU check (service included) on the CPU, tiny."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.gpu_check import REQUIRED  # noqa: E402


@pytest.mark.timeout(1200)
def test_the_gpu_check_runs_end_to_end_on_the_cpu(tmp_path: Path) -> None:
    # The budget is the GPU machine's (minutes of device time); a dry run proves the script, not the
    # speed of this CPU, so it gets room for a loaded machine (about 2 minutes on a quiet 2-core one).
    env = {**os.environ, "PY": sys.executable, "OUT": str(tmp_path / "out"), "TMPDIR": str(tmp_path),
           "GPU_CHECK_TIMEOUT": "1000"}
    (tmp_path / "out").mkdir()
    r = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--dry-run", "--budget", "900",
                        "--results", str(tmp_path / "results")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=1100)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    [path] = (tmp_path / "results").glob("gpu-*-dry-run.json")
    res = json.loads(path.read_text())
    assert res == json.loads((tmp_path / "out" / path.name).read_text())  # $OUT gets a copy
    assert not [k for k in res if k.endswith(("_error", "_skipped"))], res
    assert res["missing"] == [] and set(REQUIRED) <= res.keys() and res["train_job_ok"] is True
    for key in ("seed_loop_s_per_epoch", "seed_s_per_epoch", "projected_200_epochs_s", "fast_s_per_epoch",
                "generate_n64_http_ms", "generate_n1_http_ms"):
        assert res[key] > 0, key
    assert "seed_s_per_epoch = " in r.stdout  # each figure is printed as it is measured
    assert (tmp_path / "out" / "gpu_check.log").exists()
    profile = (tmp_path / "out" / path.name.replace(".json", ".profile.txt")).read_text()
    assert "== seed: 20 steps" in profile and "== fast: 20 steps" in profile and "aten::convolution" in profile
