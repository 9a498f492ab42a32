import pytest
import torch

from model.augment import CUTOUT_RATIO, TRANSLATION_RATIO, DiffAugment, color, cutout, translation


def images(n=8, seed=0):
    return torch.rand(n, 3, 96, 96, generator=torch.Generator().manual_seed(seed)) * 1.8 - 0.9


def rng(seed=1):
    return torch.Generator().manual_seed(seed)


def test_translation_shifts_each_image_by_at_most_an_eighth_and_fills_with_zeros():
    x = images()
    out = translation(x, rng())
    limit = int(96 * TRANSLATION_RATIO + 0.5)  # 12 px
    shifts = set()
    for k in range(x.shape[0]):
        found = None
        for dy in range(-limit, limit + 1):
            for dx in range(-limit, limit + 1):
                ref = torch.zeros_like(x[k])
                ys, yd = (slice(0, 96 - dy), slice(dy, 96)) if dy >= 0 else (slice(-dy, 96), slice(0, 96 + dy))
                xs, xd = (slice(0, 96 - dx), slice(dx, 96)) if dx >= 0 else (slice(-dx, 96), slice(0, 96 + dx))
                ref[:, yd, xd] = x[k][:, ys, xs]
                if torch.equal(ref, out[k]):
                    found = (dy, dx)
                    break
            if found:
                break
        assert found is not None, f"image {k} is not a shifted copy"
        shifts.add(found)
    assert len(shifts) > 1  # drawn per image


def test_cutout_zeroes_one_square_of_half_the_side_and_keeps_the_rest():
    x = images()
    out = cutout(x, rng())
    side = int(96 * CUTOUT_RATIO + 0.5)
    for k in range(x.shape[0]):
        hole = (out[k] == 0).all(0)
        rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
        # a side x side square, clipped by the border (at least half of it inside)
        assert side // 2 <= len(rows) <= side and side // 2 <= len(cols) <= side
        assert hole.sum() == len(rows) * len(cols)
        assert torch.equal(out[k][:, ~hole], x[k][:, ~hole])


def test_color_changes_brightness_saturation_and_contrast_per_image():
    x = images()
    out = color(x, rng())
    assert out.shape == x.shape and not torch.equal(out, x)
    means = (out - x).mean(dim=(1, 2, 3))
    assert means.std() > 0.05  # brightness differs from image to image


@pytest.mark.parametrize("policy", [("color",), ("translation",), ("cutout",), ("color", "translation", "cutout")])
def test_augmentations_are_differentiable_so_g_learns_through_them(policy):
    x = images(4).requires_grad_(True)
    DiffAugment(policy, rng())(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_same_generator_state_same_augmentation():
    x = images()
    a = DiffAugment(("color", "translation", "cutout"), rng(5))(x)
    b = DiffAugment(("color", "translation", "cutout"), rng(5))(x)
    c = DiffAugment(("color", "translation", "cutout"), rng(6))(x)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_an_empty_policy_changes_nothing_and_an_unknown_one_is_refused():
    x = images()
    assert torch.equal(DiffAugment((), rng())(x), x)
    with pytest.raises(ValueError, match="blur"):
        DiffAugment(("blur",), rng())
