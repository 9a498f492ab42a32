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


def test_color_is_the_papers_three_steps_in_order():
    """The fused multiply-add equals brightness, then saturation, then contrast, each about the
    means of the image as it is at that step, with the same per-image draws."""
    x = images()
    gen = rng(3)
    u = [torch.rand(x.shape[0], 1, 1, 1, generator=gen) for _ in range(3)]
    ref = x + (u[0] - 0.5)
    mean = ref.mean(dim=1, keepdim=True)
    ref = (ref - mean) * (u[1] * 2) + mean
    mean = ref.mean(dim=(1, 2, 3), keepdim=True)
    ref = (ref - mean) * (u[2] + 0.5) + mean
    torch.testing.assert_close(color(x, rng(3)), ref, atol=1e-5, rtol=1e-5)


def test_translation_passes_gradients_back_to_the_pixels_it_moved():
    x = images(4).requires_grad_(True)
    out = translation(x, rng(2))
    weight = torch.rand_like(out)
    (out * weight).sum().backward()
    # d out / d x routes each output pixel's weight to its source pixel: sum(grad * x) = sum(weight * out)
    torch.testing.assert_close((x.grad * x).sum(), (weight * out).sum(), atol=1e-3, rtol=1e-5)
    assert (x.grad == 0).any()  # pixels shifted out of the image get nothing


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
