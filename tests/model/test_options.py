"""The training options beyond the seed (loss, spectral norm, architecture, DiffAugment, R1,
separate learning rates) inside real training runs: resumable to the bit, stored, sampled."""
import pytest
import torch

from model.checkpoint import load_checkpoint
from model.presets import PRESETS
from model.train import train
from tests.helpers import assert_same_weights, tiny_config

OPTIONS = {
    "hinge+sn": {"loss": "hinge", "spectral_norm": True},
    "wgan-gp": {"loss": "wgan-gp", "g_every": 5},
    "resnet": {"arch": "resnet"},
    "resize": {"upsample": "resize"},
    "resnet+resize": {"arch": "resnet", "upsample": "resize"},
    "resize-last": {"upsample": "resize-last"},
    "resize-last-blur": {"upsample": "resize-last-blur"},
    "linear-last-blur": {"upsample": "linear-last-blur"},
    "mixed-last-blur": {"upsample": "mixed-last-blur"},
    "learned-last-blur": {"upsample": "learned-last-blur"},
    "balanced-last-blur": {"upsample": "balanced-last-blur"},
    "balanced-last": {"upsample": "balanced-last"},
    "d_antialias": {"d_antialias": True},
    "bf16": {"precision": "bf16"},
    "diffaugment": {"diffaugment": "color,translation,cutout"},
    "r1": {"r1_gamma": 1.0},
    "ttur": {"lr_d": 4e-4, "lr_g": 1e-4},
    "lr decay": {"lr_decay_from": 0.25},
    "fast preset": {k: v for k, v in PRESETS["fast"].values.items() if k not in ("ngf", "ndf", "batch_size")},
}


def checkpoint(run_dir, epoch):
    return load_checkpoint(run_dir / "checkpoints" / f"epoch-{epoch:04d}.pt")


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_every_option_resumes_bit_exactly_mid_epoch(image_folder, tmp_path, options):
    polls = []

    def stop():  # counts only the polls before batches: decoding polls too, more often on a busy machine
        if (tmp_path / "resumed" / "config.json").exists():
            polls.append(1)
        return len(polls) > 8

    cfg = tiny_config(epochs=3, **options)
    stopped = train(cfg, tmp_path / "resumed", should_stop=stop, data_dir=image_folder)
    assert stopped.stopped and 6 < stopped.step < 12, stopped.step  # inside epoch 2 (6 batches an epoch)
    train(None, tmp_path / "resumed")
    train(cfg, tmp_path / "straight", data_dir=image_folder)
    for key in ("generator", "discriminator", "generator_ema"):
        assert_same_weights(checkpoint(tmp_path / "straight", 3)[key], checkpoint(tmp_path / "resumed", 3)[key])
    # still a plain dict of tensors
    state = torch.load(tmp_path / "straight" / "checkpoints" / "epoch-0003.pt", weights_only=True)
    assert state["config"]["loss"] == cfg.loss


def test_separate_learning_rates_reach_the_optimizers(image_folder, tmp_path):
    train(tiny_config(epochs=1, lr_d=4e-4, lr_g=1e-4), tmp_path / "run", data_dir=image_folder)
    state = checkpoint(tmp_path / "run", 1)
    assert state["optimizer_d"]["param_groups"][0]["lr"] == 4e-4
    assert state["optimizer_g"]["param_groups"][0]["lr"] == 1e-4


def test_lr_decay_is_linear_to_zero_after_its_start():
    cfg = tiny_config(lr_decay_from=0.5)
    assert [cfg.lr_scale(p) for p in (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)] == [1, 1, 1, 0.5, 0, 0]
    assert tiny_config(lr_decay_from=0.0).lr_scale(0.25) == 0.75
    assert tiny_config().lr_scale(0.99) == 1.0  # the seed's constant rate


def test_lr_decay_reaches_both_optimizers_at_the_jobs_steps(image_folder, tmp_path):
    """2 epochs, decay from 0.5: the rates at the end of each epoch are those of the step before
    it (set before each step), so epoch 1 ends at the full rate and epoch 2 near 0."""
    cfg = tiny_config(epochs=2, lr_d=4e-4, lr_g=1e-4, lr_decay_from=0.5)
    train(cfg, tmp_path / "run", data_dir=image_folder)
    first, last = checkpoint(tmp_path / "run", 1), checkpoint(tmp_path / "run", 2)
    spe = last["step"] // 2
    assert first["optimizer_d"]["param_groups"][0]["lr"] == pytest.approx(4e-4 * cfg.lr_scale((spe - 1) / (2 * spe)))
    assert last["optimizer_g"]["param_groups"][0]["lr"] == pytest.approx(1e-4 * cfg.lr_scale((2 * spe - 1) / (2 * spe)))
    assert 0 < last["optimizer_g"]["param_groups"][0]["lr"] < 1e-4 / 2


def test_the_loss_option_changes_what_is_trained(image_folder, tmp_path):
    for loss in ("bce", "hinge"):
        train(tiny_config(epochs=1, loss=loss), tmp_path / loss, data_dir=image_folder)
    a, b = checkpoint(tmp_path / "bce", 1)["generator"], checkpoint(tmp_path / "hinge", 1)["generator"]
    assert not torch.equal(a["main.0.weight"], b["main.0.weight"])


@pytest.mark.parametrize("augment_channels_last", [False, True], ids=["cpu-layout", "gpu-layout"])
def test_d_sees_augmented_real_and_fake_batches_alike(image_folder, tmp_path, augment_channels_last):
    """With cutout on, every batch D is shown (real in D's step, fake in D's and G's) has a
    zeroed square in each image (at least 24x24, where it overhangs a corner); without, real
    images have no zero pixel and fakes only a few stray ones. The same with the GPU's plan of
    augmenting channels_last images in place."""
    import dataclasses

    from model.data import load_dataset
    from model.plan import plan_for
    from model.rundir import RunDir
    from model.train import Trainer

    def seen(diffaugment):
        cfg = tiny_config(diffaugment=diffaugment)
        plan = dataclasses.replace(plan_for(cfg, torch.device("cpu")), augment_channels_last=augment_channels_last)
        trainer = Trainer(cfg, RunDir(tmp_path / f"{diffaugment or 'none'}-{augment_channels_last}"),
                          load_dataset(image_folder, 96), plan)
        inputs = []
        def look(mod, args):
            assert args[0].is_contiguous(memory_format=torch.channels_last)  # no layout flip on the way
            inputs.append(args[0].detach().clone())

        trainer.d.register_forward_pre_hook(look)
        trainer.d_step(trainer.batches.get(torch.arange(16)))
        trainer.g_step()
        assert len(inputs) == 3  # real, fake (D step), fake (G step)
        return inputs

    for batch in seen("cutout"):
        assert ((batch == 0).all(1).flatten(1).sum(1) >= 24 * 24).all()
    real, *fakes = seen("")
    assert (real == 0).all(1).sum() == 0
    for batch in fakes:
        assert ((batch == 0).all(1).flatten(1).sum(1) < 24 * 24).all()


def test_networks_from_checkpoint_build_the_runs_architecture(image_folder, tmp_path):
    from model.networks import ResNetGenerator
    from model.sampling import best_of, networks_from_checkpoint

    train(tiny_config(epochs=1, arch="resnet", spectral_norm=True, loss="hinge"), tmp_path / "run",
          data_dir=image_folder)
    state = checkpoint(tmp_path / "run", 1)
    g, d = networks_from_checkpoint(state, with_discriminator=True)
    assert isinstance(g, ResNetGenerator)
    key = "main.0.parametrizations.weight.original"
    assert torch.equal(d.state_dict()[key], state["discriminator"][key])
    assert best_of(g, d, seed=1, n=2, candidates=8).shape == (2, 3, 96, 96)


def test_a_checkpoint_from_before_the_options_still_samples(image_folder, tmp_path):
    from model.sampling import networks_from_checkpoint

    train(tiny_config(epochs=1), tmp_path / "run", data_dir=image_folder)
    state = checkpoint(tmp_path / "run", 1)
    for k in ("loss", "spectral_norm", "arch", "diffaugment", "r1_gamma", "lr_d", "lr_g"):
        del state["config"][k]
    g, d = networks_from_checkpoint(state, with_discriminator=True)
    assert torch.equal(g.state_dict()["main.0.weight"], state["generator_ema"]["main.0.weight"])
    assert torch.equal(d.state_dict()["main.0.weight"], state["discriminator"]["main.0.weight"])
