"""benchmarks/d_sensitivity.py splits D's input gradient into the bands it claims to."""
from __future__ import annotations

import torch

from benchmarks.d_sensitivity import BANDS, chroma_blur, gradient_shares
from model.spectrum import YCC, colour_stats, to_ycc


class _Reads(torch.nn.Module):
    """A 'discriminator' that is the sum of one Y/Cb/Cr plane times a fixed pattern."""

    def __init__(self, plane: int, pattern: torch.Tensor) -> None:
        super().__init__()
        self.row, self.pattern = YCC[plane], pattern

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rgb = (x + 1) / 2
        return (torch.einsum("j,njhw->nhw", self.row, rgb) * self.pattern).sum(dim=(1, 2))


def test_each_band_is_found_where_the_gradient_lies():
    images = torch.rand(2, 3, 24, 24) * 2 - 1
    checker = ((torch.arange(24).reshape(24, 1) + torch.arange(24)) % 2).float() * 2 - 1  # all fine
    flat = torch.ones(24, 24)  # all coarse
    for plane, pattern, band in [(0, flat, "luma coarse"), (0, checker, "luma fine"),
                                 (1, flat, "colour coarse"), (2, checker, "colour fine")]:
        shares = gradient_shares(_Reads(plane, pattern), images)
        assert abs(float(shares.sum()) - 1) < 1e-5
        assert float(shares[BANDS.index(band)]) > 0.98, (band, shares)  # a 3x3 box keeps 1/9 of a checkerboard


def test_the_chroma_blur_keeps_luma_and_takes_out_fine_colour():
    images = torch.rand(4, 3, 24, 24) * 0.6 - 0.3  # well inside [-1, 1]: nothing clamped after the blur
    blurred = chroma_blur(images, 1)
    assert torch.allclose(to_ycc(blurred)[:, 0], to_ycc(images)[:, 0], atol=1e-5)
    assert float(colour_stats(blurred)[4]) < 0.2 * float(colour_stats(images)[4])
    assert torch.allclose(chroma_blur(images, 0), images, atol=1e-6)
