"""Two things SWD averages away, measured cheaply against the training images:

- the checkerboard: how much more the generated images' power spectrum peaks at the
  frequencies of a period-2 and a period-3 pixel pattern than the real images' spectrum does.
  A transposed convolution whose kernel overlaps its stride unevenly (the seed's 4x4 stride 2
  and 5x5 stride 3) stamps such patterns (Odena, Dumoulin and Olah 2016); 1 = as prominent as
  in the data, larger = a visible grid texture;
- colour: mean HSV saturation and per-channel means, generated over real (1 = the data's), and
  colour noise: the fine-scale energy of the colour-difference channels (Cb, Cr: what is left
  after a 3x3 box blur), generated over real. Faces that look "oversaturated" were measured to
  be the opposite (saturation 0.89-0.96 of the data's) with speckled hue (colour noise up to 1.75x
  the data's while the brightness channel's fine detail matches): BENCHMARKS.md, "Colour".

Periods 4, 6 and 12 are reported beside them (`artefact_p4`, `artefact_p6`, `artefact_p12`),
outside the mean. Period 6 is period 2 of the 32 px map that G's last step resizes x3, which the
16 -> 32 px transposed conv can stamp and a ReLU after a blur can bring back as a harmonic (rows
of dots). Period 12 is period 2 of the 16 px map, the 8 -> 16 px transposed conv's checkerboard
(a lattice of spots 12 px apart, seen on the emoji), and period 4 is where the x3 resize puts its
copy (32 - 8 cycles an image). A sharp-edged period-12 pattern also has harmonics at periods 6,
4, 3 and 2: a peak at period 3 can be the 12 px lattice's, not a 3 px grid's.

A peak's prominence is the mean power at its frequencies (horizontal, vertical and both
diagonals, 96/period cycles per image) over the mean power of the ring of frequencies two bins
around each, so a spectrum that is merely brighter or darker overall is not mistaken for one.
"""
from __future__ import annotations

import torch

PERIODS = (2, 3)  # the artefact figure: the mean of these
DIAGNOSTIC_PERIODS = (4, 6, 12)  # reported, not in the mean
RING = 2  # Chebyshev distance of the neighbourhood a peak is compared with


def power_spectrum(images: torch.Tensor) -> torch.Tensor:
    """Mean |FFT|^2 over images and channels of (N, C, H, W) images, each image's mean removed."""
    x = images.float()
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    return torch.fft.fft2(x).abs().pow(2).mean(dim=(0, 1))


def _peak_bins(size: int, period: int) -> set[tuple[int, int]]:
    k = size // period
    return {(u % size, v % size) for u, v in ((k, 0), (0, k), (k, k), (k, -k), (-k, 0), (0, -k), (-k, -k), (-k, k))}


def prominence(spectrum: torch.Tensor, period: int) -> float:
    size = spectrum.shape[-1]
    peaks = _peak_bins(size, period)
    ring = {((u + du) % size, (v + dv) % size) for u, v in peaks
            for du in range(-RING, RING + 1) for dv in range(-RING, RING + 1) if max(abs(du), abs(dv)) == RING}
    ring -= peaks
    at = lambda bins: spectrum[[b[0] for b in bins], [b[1] for b in bins]].mean()  # noqa: E731
    return float(at(peaks) / at(ring).clamp_min(1e-12))


def artefact(real_spectrum: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    """Per period and overall (the mean of PERIODS'): the fakes' peak prominence over the reals'."""
    fake_spectrum = power_spectrum(fake)
    # Reals with no energy around a period's bins (flat or blocky pictures) would divide by 0.
    out = {f"artefact_p{p}": round(prominence(fake_spectrum, p) / max(prominence(real_spectrum, p), 1e-12), 3)
           for p in PERIODS + DIAGNOSTIC_PERIODS}
    out["artefact"] = round(sum(out[f"artefact_p{p}"] for p in PERIODS) / len(PERIODS), 3)
    return out


# BT.601 luma and colour differences of RGB in 0..1: Y, Cb = 0.564 (B - Y), Cr = 0.713 (R - Y).
YCC = torch.tensor([[0.299, 0.587, 0.114], [-0.1687, -0.3313, 0.5], [0.5, -0.4187, -0.0813]])


def to_ycc(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, 3, H, W) Y, Cb, Cr (linear, no offsets)."""
    return torch.einsum("ij,njhw->nihw", YCC.to(rgb.dtype), rgb)


def blur3(x: torch.Tensor) -> torch.Tensor:
    """3x3 box blur of each (N, C, H, W) plane, edges replicated: what counts as coarse here."""
    return torch.nn.functional.avg_pool2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), 3, 1)


def fine_energy(channel: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between (N, H, W) planes and their 3x3 box blur (edges replicated)."""
    x = channel.unsqueeze(1)
    return (x - blur3(x)).pow(2).mean()


def colour_stats(images: torch.Tensor) -> torch.Tensor:
    """[mean saturation, mean R, mean G, mean B, colour noise] of images in [-1, 1], on a 0..1
    scale; colour noise is the fine-scale energy of Cb plus Cr (ITU-R BT.601)."""
    x = images.float().add(1).div(2).clamp(0, 1)
    hi, lo = x.amax(dim=1), x.amin(dim=1)
    saturation = torch.where(hi > 0, (hi - lo) / hi.clamp_min(1e-6), torch.zeros_like(hi))
    ycc = to_ycc(x)
    noise = fine_energy(ycc[:, 1]) + fine_energy(ycc[:, 2])
    return torch.cat([saturation.mean().view(1), x.mean(dim=(0, 2, 3)), noise.view(1)])


def colour(real_stats: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    """Saturation, brightness and colour noise of the fakes over the reals' (1 = the data's)."""
    f = colour_stats(fake)
    return {"saturation_ratio": round(float(f[0] / real_stats[0].clamp_min(1e-6)), 3),
            "brightness_ratio": round(float(f[1:4].mean() / real_stats[1:4].mean().clamp_min(1e-6)), 3),
            "colour_noise_ratio": round(float(f[4] / real_stats[4].clamp_min(1e-9)), 3)}
