"""TensorBoard logging: a training run's scalars and snapshot grids in RUN/tb/ when tensorboard is
installed; nothing, and no failure, when it is not or is turned off."""
from __future__ import annotations

import sys

import pytest

from model import tensorboard
from model.train import train
from tests.helpers import tiny_config

EventAccumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator").EventAccumulator


def read_tb(run):
    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_training_writes_each_epochs_scalars_and_snapshot_to_run_tb(image_folder, tmp_path, monkeypatch):
    monkeypatch.delenv(tensorboard.ENV, raising=False)
    run = tmp_path / "run"
    train(tiny_config(epochs=2, snapshot_epochs=(2,), swd_images=32), run, data_dir=image_folder)
    acc = read_tb(run)
    tags = set(acc.Tags()["scalars"])
    assert {"loss/D", "loss/G", "D/D(x)", "D/D(G(z))", "speed/images_per_sec", "quality/swd",
            "quality/swd_ema"} <= tags
    assert [e.step for e in acc.Scalars("loss/D")] == [6, 12]  # 96 images / 16 per batch, per epoch
    assert [e.step for e in acc.Scalars("quality/swd")] == [12]
    (snap,) = acc.Images(tensorboard.SNAPSHOT_TAG)
    assert (snap.step, snap.width, snap.height) == (12, 786, 786)


def test_a_resumed_run_continues_the_curves_without_repeating_points(image_folder, tmp_path, monkeypatch):
    monkeypatch.delenv(tensorboard.ENV, raising=False)
    run = tmp_path / "run"
    train(tiny_config(epochs=1), run, data_dir=image_folder)
    train(tiny_config(epochs=3), run)
    assert [e.step for e in read_tb(run).Scalars("loss/G")] == [6, 12, 18]


def test_turned_off_or_not_installed_it_writes_nothing(image_folder, tmp_path, monkeypatch):
    monkeypatch.setenv(tensorboard.ENV, "0")
    train(tiny_config(epochs=1), tmp_path / "off", data_dir=image_folder)
    assert not (tmp_path / "off" / "tb").exists()
    monkeypatch.delenv(tensorboard.ENV)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were missing
    result = train(tiny_config(epochs=1), tmp_path / "missing", data_dir=image_folder)
    assert result.epoch == 1 and not (tmp_path / "missing" / "tb").exists()


def test_a_failing_writer_stops_the_logging_not_the_training(caplog):
    class Broken:
        closed = False

        def add_scalar(self, *args):
            raise OSError("No space left on device")

        def close(self):
            Broken.closed = True

    log = tensorboard.TensorBoardLog(Broken())
    log.epoch({"loss_d": 1.0}, 5)
    assert not log.active and Broken.closed and "No space left on device" in caplog.text
    log.epoch({"loss_d": 1.0}, 6)  # a no-op from now on
