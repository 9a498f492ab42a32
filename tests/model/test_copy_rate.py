"""The copy rate (model/nearest.py's rule) and its measurement at snapshot epochs (model/train.py)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from model.data import load_dataset
from model.nearest import COPY_FRACTION, NearestIndex, block_features
from model.plan import plan_for
from model.rundir import RunDir
from model.synth import draw_face, write_dataset
from model.train import Trainer, train
from tests.helpers import tiny_config

GREYS = (0, 60, 200)  # nearest others 60, 60 and 140 grey levels away: median 60
UNIT = math.sqrt(432)  # block-mean distance between two flat images one grey level apart


def flat(levels) -> np.ndarray:
    """Flat grey 96x96 images: block features equal to the level in every one of 432 numbers."""
    return np.stack([np.full((3, 96, 96), v, np.uint8) for v in levels])


def test_a_face_is_a_copy_when_nearer_than_half_the_real_to_real_median():
    index = NearestIndex.build(flat(GREYS))
    assert index.reference() == pytest.approx(60 * UNIT, rel=1e-4)
    assert index.copy_distance() == pytest.approx(COPY_FRACTION * 60 * UNIT, rel=1e-4)
    rate, limit = index.copy_rate(flat([0, 29, 100, 130, 171, 240]))  # 0, 29, 40, 70, 29 and 40 levels off
    assert limit == index.copy_distance()
    assert rate == pytest.approx(3 / 6)  # under 30 levels off: 0, 29 and 171 are copies


def test_repeated_images_do_not_shrink_the_reference_to_zero():
    once = NearestIndex.build(flat(GREYS))
    many = NearestIndex.build(flat(GREYS * 7))  # each picture seven times: a memorisation test's data
    assert many.reference() == pytest.approx(once.reference(), rel=1e-4)
    assert many.copy_rate(flat(GREYS))[0] == 1.0
    assert NearestIndex.build(flat([9] * 5)).copy_rate(flat([9]))[0] == 0.0  # one distinct image: no reference


def test_many_faces_are_measured_in_bounded_slices_and_match_a_plain_search():
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, (300, 3, 96, 96), dtype=np.uint8)
    index = NearestIndex.build(data)
    faces = np.concatenate([data[:40], rng.integers(0, 256, (560, 3, 96, 96), dtype=np.uint8)])
    rate, _ = index.copy_rate(faces)
    assert rate == pytest.approx(40 / 600)
    got = index.nearest_distances(index.feats[:20].astype(np.float32), rows=7)  # 3 slices
    assert np.allclose(got, 0, atol=1e-2)


def test_a_generator_that_returns_its_training_images_copies_them_all(image_folder, tmp_path):
    """The trainer's measurement end to end, with the faces set to training images exactly."""
    cfg = tiny_config(swd_images=16)
    dataset = load_dataset(image_folder, 96)
    trainer = Trainer(cfg, RunDir(tmp_path / "run"), dataset, plan_for(cfg, torch.device("cpu")))
    copies = torch.from_numpy(np.asarray(dataset.images[:64])).float().div(127.5).sub(1)
    assert trainer.copies(copies)["copy_rate"] == 1.0
    noise = torch.rand(64, 3, 96, 96) * 2 - 1  # static is nowhere near a smooth training image
    found = trainer.copies(noise)
    assert found["copy_rate"] == 0.0 and found["copy_distance"] > 0


def test_each_measured_snapshot_epoch_logs_its_copy_rate(image_folder, tmp_path):
    reports = []
    train(tiny_config(swd_images=16, snapshot_epochs=(2,)), tmp_path, reports.append, data_dir=image_folder)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    epochs = {r["epoch"]: r for r in rows if r["kind"] == "epoch"}
    assert "copy_rate" not in epochs[1]  # not a snapshot epoch
    assert 0 <= epochs[2]["copy_rate"] <= 1 and epochs[2]["copy_distance"] > 0
    assert [r.copy_rate for r in reports if r.epoch_end] == [None, epochs[2]["copy_rate"]]


def synthetic(indices) -> np.ndarray:
    return np.stack([np.asarray(draw_face(0, i)).transpose(2, 0, 1) for i in indices])


def test_new_faces_of_the_same_kind_are_not_copies_and_noisy_or_1px_shifted_copies_are():
    """What a healthy generator would draw at best (faces of the data's kind it never saw) against
    what a memorising one draws (its training faces, a little noisy or off by a pixel)."""
    train_faces, new_faces = synthetic(range(128)), synthetic(range(128, 192))
    index = NearestIndex.build(train_faces)
    assert index.copy_rate(new_faces)[0] == 0.0
    nearest_new = index.nearest_distances(np.rint(block_features(new_faces)))
    assert nearest_new.min() > 1.1 * index.copy_distance()  # a margin, not a coin toss
    noisy = np.clip(train_faces[:64] + np.random.default_rng(0).normal(0, 12, (64, 3, 96, 96)), 0, 255)
    assert index.copy_rate(noisy.astype(np.uint8))[0] == 1.0
    assert index.copy_rate(np.roll(train_faces[:64], (1, 1), axis=(2, 3)))[0] == 1.0


@pytest.mark.slow
def test_a_healthy_job_on_synthetic_faces_copies_none_of_them(tmp_path):
    """Real training on procedural faces: its snapshot faces are measured and none is a copy."""
    write_dataset(tmp_path / "data", 64, workers=1)
    train(tiny_config(swd_images=16, epochs=2, snapshot_epochs=(1, 2)), tmp_path / "run", data_dir=tmp_path / "data")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    rates = [r["copy_rate"] for r in rows if r["kind"] == "epoch"]
    assert len(rates) == 2 and max(rates) < 0.1


@pytest.mark.slow
def test_a_job_that_learns_four_pictures_by_heart_has_a_high_copy_rate(tmp_path):
    """Real training that memorises: four distinct pictures (2x2 blocks of random colours), each
    16 times, and a small G and D trained hard (G every batch, lr 2e-3, hinge loss, resize
    upsampling, no EMA). After 400 steps most of its snapshot faces are one of the four.
    Minutes of CPU: the cheapest set-up found that memorises (see docs/http-api.md)."""
    folder = tmp_path / "data" / "class0"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    for i in range(4):
        blocks = Image.fromarray(rng.integers(0, 256, (2, 2, 3)).astype(np.uint8))
        picture = blocks.resize((96, 96), Image.Resampling.NEAREST)
        for copy in range(16):
            picture.save(folder / f"{i}-{copy:02d}.png")
    cfg = tiny_config(ngf=16, ndf=16, epochs=100, snapshot_epochs=(100,), swd_images=16, log_every=1000,
                      g_every=1, ema_decay=0, lr=2e-3, loss="hinge", upsample="resize")
    train(cfg, tmp_path / "run", data_dir=tmp_path / "data")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["copy_rate"] for r in rows if "copy_rate" in r][0] >= 0.5  # 0.625 when measured
