import io

import numpy as np
import pytest
import torch
from PIL import Image

from model.imageio import encode_png, grid_rgb
from model.networks import build_networks
from model.sampling import best_of, generate, interpolate, sample_noise


@pytest.fixture(scope="module")
def nets():
    g, d = build_networks(100, 16, 16, seed=1)
    # give BatchNorm non-trivial running statistics, as after training
    g.train()
    with torch.no_grad():
        for _ in range(3):
            g(torch.randn(32, 100, 1, 1))
    return g.eval().requires_grad_(False), d.eval().requires_grad_(False)


def test_same_seed_same_images_and_different_seed_different_images(nets):
    g, _ = nets
    assert torch.equal(generate(g, 42, 8), generate(g, 42, 8))
    assert not torch.equal(generate(g, 42, 8), generate(g, 43, 8))


def test_image_i_does_not_depend_on_how_many_were_asked_for(nets):
    g, _ = nets
    many = generate(g, 7, 64)
    assert torch.equal(generate(g, 7, 1)[0], many[0])
    assert torch.equal(generate(g, 7, 10)[9], many[9])
    assert torch.equal(generate(g, 7, 100)[:64], many)  # across chunk boundaries too


def test_noise_depends_only_on_seed_and_index():
    a = sample_noise(5, [3], 100)
    b = sample_noise(5, range(10), 100)[3:4]
    assert torch.equal(a, b) and not torch.equal(a, sample_noise(6, [3], 100))


def test_truncation_bounds_noise_and_keeps_in_range_components():
    plain = sample_noise(1, range(16), 100)
    trunc = sample_noise(1, range(16), 100, truncation=0.5)
    assert trunc.abs().max() <= 0.5
    inside = plain.abs() <= 0.5
    assert torch.equal(trunc[inside], plain[inside]) and not torch.equal(trunc, plain)


def test_best_of_keeps_the_candidates_d_scores_highest_best_first(nets):
    g, d = nets
    kept = best_of(g, d, 3, 4, 40)
    scores = d(kept)
    all_scores = d(generate(g, 3, 40))
    assert torch.allclose(scores, torch.sort(all_scores, descending=True).values[:4], atol=1e-5)
    assert torch.equal(kept, best_of(g, d, 3, 4, 40))  # deterministic
    assert torch.equal(best_of(g, d, 3, 1, 40)[0], kept[0])
    with pytest.raises(ValueError):
        best_of(g, d, 3, 10, 5)


def test_interpolation_starts_and_ends_at_the_two_seeds(nets):
    g, _ = nets
    strip = interpolate(g, 1, 2, 5)
    assert strip.shape == (5, 3, 96, 96)
    assert torch.allclose(strip[0], generate(g, 1, 1)[0], atol=1e-5)
    assert torch.allclose(strip[-1], generate(g, 2, 1)[0], atol=1e-5)


def test_grid_of_64_is_786px_and_png_round_trips(nets):
    g, _ = nets
    rgb = grid_rgb(generate(g, 0, 64))
    assert rgb.shape == (786, 786, 3)
    decoded = np.asarray(Image.open(io.BytesIO(encode_png(rgb))).convert("RGB"))
    assert np.array_equal(decoded, rgb)
    assert rgb[:2].max() == 0  # black gutter


def test_pillow_fallback_encodes_the_same_pixels(monkeypatch):
    import model.imageio as imageio
    rgb = (np.random.default_rng(0).random((50, 70, 3)) * 255).astype(np.uint8)
    fast = encode_png(rgb)
    monkeypatch.setattr(imageio, "_isal_zlib", None)
    slow = imageio.encode_png(rgb)
    for data in (fast, slow):
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), rgb)
