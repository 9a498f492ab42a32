"""The checkerboard and colour measures (model/spectrum.py), and where training records them."""
import json

import torch

from model.networks import build_networks
from model.spectrum import artefact, colour, colour_stats, power_spectrum
from model.train import train
from tests.helpers import tiny_config


def smooth_images(n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    small = torch.rand(n, 3, 6, 6, generator=gen) * 2 - 1
    return torch.nn.functional.interpolate(small, size=96, mode="bicubic", align_corners=False).clamp(-1, 1)


def test_images_like_the_data_score_one_and_a_stamped_grid_scores_high():
    real, other = power_spectrum(smooth_images(64, 0)), smooth_images(64, 1)
    same = artefact(real, other)
    assert all(0.8 < same[k] < 1.25 for k in ("artefact", "artefact_p2", "artefact_p3")), same
    y, x = torch.meshgrid(torch.arange(96), torch.arange(96), indexing="ij")
    thirds = artefact(real, (other + 0.05 * ((y % 3 == 0) | (x % 3 == 0))).clamp(-1, 1))
    checker = artefact(real, (other + 0.05 * ((y + x) % 2)).clamp(-1, 1))
    assert thirds["artefact_p3"] > 10 and thirds["artefact_p2"] < 1.25
    assert checker["artefact_p2"] > 10 and checker["artefact_p3"] < 1.25
    # period 6 (period 2 of G's 32 px map) is reported beside the figure, not in it
    dots = artefact(real, (other + 0.05 * torch.cos(torch.pi * x / 3) * torch.cos(torch.pi * y / 3)).clamp(-1, 1))
    assert dots["artefact_p6"] > 10 and dots["artefact"] < 1.25 and 0.8 < same["artefact_p6"] < 1.25
    # period 12 (period 2 of G's 16 px map: a lattice of soft spots) likewise, and its x3 copy at period 4
    spots = artefact(real, (other + 0.15 * torch.cos(torch.pi * x / 6) * torch.cos(torch.pi * y / 6)).clamp(-1, 1))
    assert spots["artefact_p12"] > 10 and spots["artefact"] < 1.25 and spots["artefact_p4"] < 1.25
    assert all(0.8 < same[f"artefact_p{p}"] < 1.25 for p in (4, 12))
    brighter = (other * 0.5 + 0.5).clamp(-1, 1)  # a spectrum merely scaled is not an artefact
    assert 0.8 < artefact(real, brighter)["artefact"] < 1.25


def test_an_untrained_deconv_generator_stamps_a_grid_and_a_resize_one_does_not():
    real = power_spectrum(smooth_images(64, 0))
    scores = {}
    for upsample in ("deconv", "resize"):
        g, _ = build_networks(100, 16, 16, 0, upsample=upsample)
        with torch.no_grad():
            scores[upsample] = artefact(real, g.eval()(torch.randn(64, 100, 1, 1)))["artefact"]
    assert scores["deconv"] > 5 and scores["resize"] < 2, scores


def test_blocky_reals_with_no_energy_at_the_peaks_give_a_finite_figure_not_a_crash():
    reals = torch.nn.functional.interpolate(torch.rand(4, 3, 2, 2) * 2 - 1, size=96, mode="nearest")
    out = artefact(power_spectrum(reals), smooth_images(4, 1))
    assert all(isinstance(v, float) and v == v and abs(v) < float("inf") for v in out.values())


def test_colour_ratios_are_one_for_the_data_and_see_saturation():
    images = smooth_images(32, 2)
    stats = colour_stats(images)
    assert colour(stats, images) == {"saturation_ratio": 1.0, "brightness_ratio": 1.0, "colour_noise_ratio": 1.0}
    grey = images.mean(dim=1, keepdim=True).expand_as(images)
    assert colour(stats, grey)["saturation_ratio"] < 0.1


def test_colour_noise_sees_speckled_hue_and_not_fine_brightness_detail():
    images = smooth_images(32, 3) * 0.5  # away from the clamp, which would turn grey speckle into colour
    stats = colour_stats(images)
    speckle = torch.randn(32, 3, 96, 96, generator=torch.Generator().manual_seed(0)) * 0.1
    hue_speckled = images + speckle - speckle.mean(dim=1, keepdim=True)  # colour only
    luma_speckled = (images + speckle.mean(dim=1, keepdim=True).expand_as(images) * 1.7)
    assert colour(stats, hue_speckled)["colour_noise_ratio"] > 3
    assert colour(stats, luma_speckled)["colour_noise_ratio"] < 1.5


def test_each_snapshot_epoch_records_the_measures_beside_swd(image_folder, tmp_path):
    train(tiny_config(epochs=2, snapshot_epochs=(1,), swd_images=32), tmp_path / "run", data_dir=image_folder)
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in rows if r["kind"] == "epoch"]
    for r in epochs:  # epoch 1 asked for, epoch 2 the last
        assert {"swd", "swd_ema", "artefact", "artefact_p2", "artefact_p3", "artefact_p4", "artefact_p6",
                "artefact_p12", "saturation_ratio", "brightness_ratio", "colour_noise_ratio"} <= r.keys()
        assert r["artefact"] > 0 and r["saturation_ratio"] > 0
