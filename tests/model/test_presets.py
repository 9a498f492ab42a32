import json
import subprocess
import sys

import pytest

from model.cli import build_parser, config_from_args
from model.config import ConfigError, TrainConfig
from model.presets import PRESETS, resolve
from model.train import train
from tests.helpers import tiny_config


def test_the_seed_preset_is_exactly_the_defaults():
    assert PRESETS["seed"].values == {}
    assert resolve("seed", {}) == TrainConfig() == resolve(None, {})


def test_fast_preset_fields_apply_and_explicit_fields_override_them():
    fast = resolve("fast", {})
    for k, v in PRESETS["fast"].values.items():
        assert getattr(fast, k) == v
    mine = resolve("fast", {"ngf": 16, "epochs": 7})
    assert (mine.ngf, mine.epochs, mine.loss) == (16, 7, fast.loss)


def test_an_unknown_preset_is_refused():
    with pytest.raises(ConfigError, match="unknown preset 'quick'"):
        resolve("quick", {})


def test_cli_preset_flag_then_explicit_flags():
    args = build_parser().parse_args(["train", "--out", "x", "--preset", "fast", "--ngf", "16"])
    cfg = config_from_args(args, TrainConfig())
    assert cfg == resolve("fast", {"ngf": 16})


def test_train_help_lists_every_preset_with_its_values():
    r = subprocess.run([sys.executable, "-m", "model", "train", "--help"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0
    for name in PRESETS:
        assert f"  {name}: " in r.stdout
    assert "--loss hinge" in r.stdout and "{bce,hinge,wgan-gp}" in r.stdout


def test_a_run_started_from_a_preset_stores_the_resolved_fields(image_folder, tmp_path):
    from model.cli import main

    run = tmp_path / "run"
    assert main(["train", "--data", str(image_folder), "--out", str(run), "--preset", "fast", "--ngf", "8",
                 "--ndf", "8", "--batch-size", "16", "--epochs", "1", "--snapshot-epochs", "1",
                 "--swd-images", "0"]) == 0
    stored = json.loads((run / "config.json").read_text())["train"]
    assert stored == resolve("fast", {"ngf": 8, "ndf": 8, "batch_size": 16, "epochs": 1,
                                      "snapshot_epochs": (1,), "swd_images": 0}).to_dict()
    assert main(["train", "--out", str(run), "--epochs", "2"]) == 0  # resume: the stored fields
    with pytest.raises(ConfigError, match="different config"):
        train(tiny_config(epochs=3), run)
