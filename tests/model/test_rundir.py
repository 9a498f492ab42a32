"""model/rundir.py: what a run folder's files say."""
from __future__ import annotations

from model.rundir import RunDir


def test_measured_epochs_are_the_epoch_rows_with_an_swd_the_sampled_gs_first(tmp_path) -> None:
    """The epochs whose checkpoints training keeps and the default model's candidates: one
    reading of metrics.jsonl for both."""
    run = RunDir(tmp_path)
    for row in ({"kind": "interval", "epoch": 1, "step": 3, "swd": 9.0},
                {"kind": "epoch", "epoch": 1, "step": 6},
                {"kind": "epoch", "epoch": 2, "step": 12, "swd": 5.0, "swd_ema": 4.0},
                {"kind": "epoch", "epoch": 3, "step": 18, "swd": 3.0},
                {"kind": "epoch", "epoch": 4, "step": 24, "swd": None},
                {"kind": "epoch", "epoch": "5", "step": 30, "swd": 1.0},
                {"kind": "epoch", "epoch": 6, "step": 36, "swd": True}):
        run.append_metrics(row)
    assert run.measured_epochs() == {2: 4.0, 3: 3.0}
