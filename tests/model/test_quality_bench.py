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


def test_a_run_measured_before_a_config_field_existed_is_still_its_configs() -> None:
    sys.path.insert(0, str(ROOT))
    from benchmarks.quality_bench import same_config
    from model.config import TrainConfig

    now = TrainConfig(ngf=8).to_dict()
    before = {k: v for k, v in now.items() if k != "d_antialias"}  # stored before the field came
    assert same_config(before, now)
    assert not same_config({**before, "d_antialias": True}, now)
    assert not same_config({**before, "ngf": 16}, now)
    assert not same_config({**before, "no_such_field": 1}, now) and not same_config(None, now)


def test_the_latest_state_row_keeps_its_columns_and_leaves_out_finished_runs(image_folder: Path,
                                                                              tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from benchmarks.quality_bench import grids_from_states

    out = tmp_path / "synthetic" / "mine"
    assert run_one(image_folder, TINY, out, 0.005).returncode == 0
    in_progress = grids_from_states(tmp_path, "synthetic", ["absent", "mine"], done_at=1.0)
    assert [label for label, _ in in_progress][0] == "absent" and in_progress[0][1] is None
    assert in_progress[1][0].startswith("mine, ") and in_progress[1][1].size == (6 * 96 + 14,) * 2
    # Saved at the last mark: its grid is that mark's, not drawn twice.
    assert [im for _, im in grids_from_states(tmp_path, "synthetic", ["absent", "mine"], done_at=0.005)] == [None, None]


def test_a_look_missing_from_a_finished_run_is_measured_on_its_final_state_as_the_run_would(
        image_folder: Path, tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from benchmarks.quality_bench import add_missing_looks

    out = tmp_path / "synthetic" / "mine"
    assert run_one(image_folder, TINY, out, 0.005).returncode == 0
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "synthetic").symlink_to(image_folder)
    measured = json.loads((out / "result.json").read_text())["rows"]
    rows = [dict(r) for r in measured]
    del rows[-1]["artefact_p6"], rows[-1]["artefact_p12"]  # as a run from before these figures
    add_missing_looks(tmp_path, "synthetic", "mine", rows, 0.005)
    assert rows == measured  # the same G, noise and reals: the run's own figures, to the digit
    assert json.loads((out / "result.json").read_text())["rows"] == measured
    unfinished = [{k: v for k, v in r.items() if k != "artefact_p6"} for r in measured]
    add_missing_looks(tmp_path, "synthetic", "mine", unfinished, 0.01)  # the budget not reached: left alone
    assert "artefact_p6" not in unfinished[-1]


def test_train_and_the_benchmark_drive_the_same_loop(image_folder: Path, tmp_path: Path, monkeypatch) -> None:
    """Both step through Trainer.run and measure through model.quality.QualityProbe: a change
    to the batch step, the learning-rate schedule or the SWD measure made there is what
    train() and the benchmark both run."""
    import torch

    sys.path.insert(0, str(ROOT))
    from benchmarks import quality_bench
    from model.quality import QualityProbe
    from model.train import Trainer, train
    from tests.helpers import tiny_config

    # Interop threads can be set once a process: the benchmark's own process sets them.
    monkeypatch.setattr(torch, "set_num_interop_threads", lambda n: None)
    seen: list[tuple[int, float]] = []
    measured: list[int] = []
    step, measure = Trainer.train_batch, QualityProbe.swd

    def spy(self, order, i):
        seen.append((self.step, self.opt_d.param_groups[0]["lr"]))
        return step(self, order, i)

    def spy_measure(self, fake):
        measured.append(fake.shape[0])
        return measure(self, fake)

    monkeypatch.setattr(Trainer, "train_batch", spy)
    monkeypatch.setattr(QualityProbe, "swd", spy_measure)
    train(tiny_config(epochs=2, lr_decay_from=0.0, swd_images=32), tmp_path / "run", data_dir=image_folder)
    (from_train, seen[:]), (measured_in_train, measured[:]) = (list(seen), []), (list(measured), [])
    threads = torch.get_num_threads()
    try:  # one torch thread, as the benchmark runs: its CPU-time budget buys as many batches on a
        # busy machine as on a quiet one (two threads spinning against other load buy fewer)
        quality_bench.run_one(image_folder, {**TINY, "lr_decay_from": 0.0}, 0.004, tmp_path / "bench" / "x",
                              [], tmp_path / "cache")
    finally:
        torch.set_num_threads(threads)
    for rows in (from_train, seen):
        steps, lrs = zip(*rows, strict=True)
        assert list(steps) == list(range(len(rows))) and len(rows) > 2
        assert lrs[0] == 2e-4 and all(a > b for a, b in zip(lrs, lrs[1:], strict=False))  # decayed before each batch
    assert measured_in_train == [32] * 4  # epochs 1 and 2 (the last): raw G and EMA G each
    assert measured == [96]  # the benchmark's one measurement, at its budget: every image (fewer than 512)
