import torch
import torch.nn.functional as F

from model.swd import laplacian_pyramid, swd


def _smooth(n, seed, size=12):
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(n, 3, size, size, generator=g) * 2 - 1, size=96, mode="bilinear")


def test_pyramid_levels_add_back_up_to_the_image():
    from model.swd import _up
    x = torch.rand(2, 3, 96, 96)
    levels = laplacian_pyramid(x)
    assert [lvl.shape[-1] for lvl in levels] == [96, 48, 24, 12]
    rec = levels[-1]
    for lvl in reversed(levels[:-1]):
        rec = lvl + _up(rec, lvl.shape[-2:])
    assert torch.allclose(rec, x, atol=1e-5)


def test_swd_is_small_for_the_same_distribution_and_large_for_a_different_one():
    real = _smooth(128, 0)
    same = swd(real, _smooth(128, 1))["swd"]
    noisy = swd(real, torch.rand(128, 3, 96, 96) * 2 - 1)["swd"]
    blurry = swd(real, _smooth(128, 2, size=4))["swd"]
    assert same * 2 < noisy and same * 1.5 < blurry


def test_swd_reports_one_value_per_level():
    out = swd(_smooth(16, 0), _smooth(16, 1))
    assert len(out["swd_levels"]) == 4 and out["swd"] == sum(out["swd_levels"]) / 4
