"""Latent directions (model/directions.py): GANSpace's PCA-and-regression, its determinism, its
cache format's checks, and the edit syntax."""
from __future__ import annotations

import json

import pytest
import torch

from model import directions as dirs
from model.directions import (
    MAX_EDITS,
    SAMPLE_SEED,
    SAMPLES,
    Directions,
    DirectionsError,
    EditError,
    check_edits,
    compute_directions,
    early_features,
    edit_noise,
    edits_text,
    parse_edits,
)
from model.networks import build_networks
from model.sampling import run_generator, sample_noise


def _g(arch: str = "seed", ngf: int = 8, upsample: str = "deconv", nz: int = 100, seed: int = 0):
    g, _ = build_networks(nz, ngf, 8, seed, arch, upsample=upsample)
    with torch.no_grad():  # non-trivial BatchNorm statistics, as a trained G has
        bn = g.main[1] if arch == "seed" else g.main[1].residual[0]
        gen = torch.Generator().manual_seed(seed + 1)
        bn.running_mean.copy_(torch.randn(bn.num_features, generator=gen) * 0.01)
        bn.running_var.copy_(torch.rand(bn.num_features, generator=gen) * 0.02 + 0.005)
    return g.eval()


def _reference(g, k: int) -> torch.Tensor:
    """GANSpace written out the slow way: PCA by SVD of all the features, then least squares of
    z on the PCA coordinates; rows normalised."""
    n = dirs.SAMPLES
    z = torch.randn(n, g.nz, generator=torch.Generator().manual_seed(SAMPLE_SEED)).double()
    with torch.no_grad():
        x = early_features(g, z.float().view(n, -1, 1, 1)).double()
    x = x - x.mean(0)
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    coords = x @ vh[:k].T
    u = torch.linalg.lstsq(coords, z - z.mean(0)).solution  # (k, nz)
    return u / u.norm(dim=1, keepdim=True)


@pytest.mark.parametrize("arch,ngf,samples", [("seed", 4, 600), ("resnet", 8, 300), ("seed", 8, 300)],
                         ids=["covariance path", "Gram path", "Gram path, seed G"])
def test_directions_are_ganspace_regression_of_z_on_pca_coordinates(arch, ngf, samples, monkeypatch):
    monkeypatch.setattr(dirs, "SAMPLES", samples)  # (fewer than served, for the slow reference's sake)
    g = _g(arch, ngf)
    d = compute_directions(g, "crc32:00000000")
    ref = _reference(g, len(d))
    cos = (d.vectors.double() * ref).sum(1).abs()
    assert len(d) == 16 and cos.min() > 0.999, cos
    assert torch.allclose(d.vectors.norm(dim=1), torch.ones(16), atol=1e-5)
    assert list(d.variance) == sorted(d.variance, reverse=True) and 0 < sum(d.variance) <= 1
    assert all(0.5 < s < 2 for s in d.scales)  # a standard normal's spread along a unit vector, about 1


def test_same_weights_give_the_same_directions_on_every_upsample_variant():
    a = compute_directions(_g("seed", 8, "deconv"), "crc32:1")
    b = compute_directions(_g("seed", 8, "deconv"), "crc32:1")
    c = compute_directions(_g("seed", 8, "resize"), "crc32:1")  # same first block, other last layers
    assert torch.equal(a.vectors, b.vectors) and a.scales == b.scales and a.variance == b.variance
    assert torch.equal(a.vectors, c.vectors)
    other = compute_directions(_g("seed", 8, seed=5), "crc32:1")
    assert not torch.allclose(a.vectors, other.vectors)


def test_chunked_features_equal_the_first_block_output():
    for arch in ("seed", "resnet"):
        g = _g(arch, 16)
        z = torch.randn(7, 100, 1, 1)
        channels = g.main[0].out_channels
        chunks = torch.cat([dirs._channel_features(g, z, lo, min(lo + 40, channels)).view(7, -1, 16)
                            for lo in range(0, channels, 40)], 1)
        assert torch.allclose(chunks.reshape(7, -1), early_features(g, z), atol=1e-6)


def test_a_small_noise_vector_has_as_many_directions_as_dimensions():
    d = compute_directions(_g(nz=6), "crc32:2")
    assert len(d) == 6 and d.vectors.shape == (6, 6)


def test_dead_features_still_give_finite_directions():
    g = _g()
    with torch.no_grad():
        g.main[0].weight.zero_()
        g.main[1].running_mean.fill_(float("nan"))
    d = compute_directions(g, "crc32:3")
    assert torch.isfinite(d.vectors).all() and d.variance == (0.0,) * 16


def test_an_edit_moves_the_noise_by_amount_standard_deviations():
    d = compute_directions(_g(), "crc32:4")
    noise = sample_noise(7, range(3), 100)
    assert edit_noise(noise, d, ()) is noise  # no edits: the very same noise
    moved = edit_noise(noise, d, ((2, 1.5),))
    step = (moved - noise).view(3, -1)
    assert torch.allclose(step, (1.5 * d.scales[2] * d.vectors[2]).expand(3, -1), atol=1e-6)
    z = torch.randn(SAMPLES, 100, generator=torch.Generator().manual_seed(SAMPLE_SEED))
    assert (z @ d.vectors[2]).std().item() == pytest.approx(d.scales[2], abs=1e-5)
    with pytest.raises(ValueError):
        edit_noise(noise, None, ((0, 1.0),))


def test_an_edit_changes_the_faces_and_amount_zero_does_not():
    g = _g()
    d = compute_directions(g, "crc32:5")
    noise = sample_noise(3, range(2), 100)
    plain = run_generator(g, noise)
    assert torch.equal(run_generator(g, edit_noise(noise, d, check_edits(((0, 0.0), (4, -0.0)), 16))), plain)
    moved = run_generator(g, edit_noise(noise, d, ((0, 3.0),)))
    assert (moved - plain).abs().mean() > 0.1 * plain.abs().mean()  # (an untrained G draws faint images)


def test_the_cache_format_round_trips_and_refuses_anything_else():
    d = compute_directions(_g(), "crc32:0000000a")
    back = Directions.from_json(d.to_json(), "crc32:0000000a", 100)
    assert torch.equal(back.vectors, d.vectors) and back.scales == d.scales and back.variance == d.variance
    good = json.loads(d.to_json())
    bad = [b"", b"\x00\xff", b"[" * 100_000, b"null", json.dumps({**good, "checksum": "crc32:0000000b"}).encode(),
           json.dumps({**good, "format": "other"}).encode(),
           json.dumps({**good, "vectors": good["vectors"][:-1]}).encode(),
           json.dumps({**good, "vectors": [[1.0] * 99] * 16}).encode(),
           json.dumps({**good, "scales": [float("nan")] * 16}).encode(),
           json.dumps({**good, "scales": [-1.0] * 16}).encode(),
           json.dumps({**good, "variance": [2.0] * 16}).encode(),
           json.dumps({**good, "vectors": [["x"] * 100] * 16}).encode(),
           json.dumps({**good, "samples": 10}).encode()]
    for data in bad:
        with pytest.raises(DirectionsError):
            Directions.from_json(data, "crc32:0000000a", 100)
    with pytest.raises(DirectionsError):
        Directions.from_json(d.to_json(), "crc32:0000000a", 99)  # another nz


def test_edits_parse_sorted_and_bounded():
    assert parse_edits("3:1.5,0:-2") == ((0, -2.0), (3, 1.5)) == parse_edits("0:-2.000,3:1.5")
    assert edits_text(parse_edits("3:1.5,0:-2")) == "0:-2.0,3:1.5"
    assert parse_edits("15:10,2:-10") == ((2, -10.0), (15, 10.0))
    assert check_edits(parse_edits("0:0,5:1,7:-0.0"), 16) == ((5, 1.0),)
    refused = {
        "": "is not DIRECTION:AMOUNT", "1": "is not DIRECTION:AMOUNT", "1:1e3": "is not DIRECTION:AMOUNT",
        "1:nan": "is not DIRECTION:AMOUNT", "1:inf": "is not DIRECTION:AMOUNT", "1:1.": "is not DIRECTION:AMOUNT",
        " 1:1": "is not DIRECTION:AMOUNT", "100:1": "is not DIRECTION:AMOUNT", "1:0.1234567": "at most 6 places",
        "1:10.5": "out of range -10..10", "1:-11": "out of range -10..10",
        "1:2,1:3": "direction 1 is edited twice", ",".join(f"{k}:1" for k in range(MAX_EDITS + 1)): "at most 8",
    }
    for text, why in refused.items():
        with pytest.raises(EditError, match=why):
            parse_edits(text)
    with pytest.raises(EditError, match="direction 16 does not exist: this model has 16"):
        check_edits(parse_edits("16:1"), 16)
