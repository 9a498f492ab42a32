"""What the discriminator looks at: the energy of D's input gradient in four bands (luma and
colour difference, each coarse and fine), for trained Ds against an untrained one and against a
gradient with no preference. G learns only through that gradient, so a band D hardly weighs is one
G is hardly corrected in (the colour-noise question of BENCHMARKS.md, "Upsampling and colour").

    python benchmarks/d_sensitivity.py --work /work/qwork             # every run of a quality_bench --work
    python benchmarks/d_sensitivity.py --state run/checkpoints/epoch-0010.pt --data faces/
    python benchmarks/d_sensitivity.py --work /work/qwork --chroma    # and the colour-blur table
    python benchmarks/d_sensitivity.py --work /work/qwork --periods   # and the grid in D's gradient

With --chroma, a second table: SWD (256 faces against the 256 reals), colour noise and the fine
luma energy of the EMA G's faces over the data's, as they are and with only their colour
difference channels (Cb, Cr) blurred once or twice by the 3x3 box, luma untouched. It asks
whether the fine colour G adds is what SWD holds against its faces.

With --periods, a third table: the peak prominence (model/spectrum.py; 1 = no peak) at periods 2,
3 and 6 of D's input gradient on G's images, for the trained D and an untrained one of the same
config, beside that of G's images themselves. G learns only through that gradient: a peak there
is a grid D teaches G.

Bands: Y, Cb, Cr (BT.601) of the images in 0..1; coarse = a 3x3 box blur, fine = the rest
(model/spectrum.py). The gradient is taken with respect to Y, Cb, Cr (D(x) with x = YCC^-1 y, so
grad_y = YCC^-T grad_x), on 256 training images and 256 images of the job's raw G (the one D was
trained against), D in eval mode. Printed: each band's share of the gradient's energy, and the
fine colour share among the fine bands, next to the run's colour noise (fine Cb + Cr energy of
its EMA G's images over the data's, as in quality_bench).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.config import ConfigError  # noqa: E402
from model.spectrum import YCC, blur3, colour_stats, fine_energy, power_spectrum, prominence, to_ycc  # noqa: E402

IMAGES = 256
BANDS = ("luma coarse", "luma fine", "colour coarse", "colour fine")
RGB_OF_YCC = torch.linalg.inv(YCC)  # rgb = RGB_OF_YCC @ (Y, Cb, Cr)


def band_energy(ycc: torch.Tensor) -> torch.Tensor:
    """Mean squared value of (N, 3, H, W) Y, Cb, Cr in each of BANDS (summed over Cb and Cr)."""
    coarse = blur3(ycc)
    fine = ycc - coarse
    return torch.stack([coarse[:, :1].pow(2).sum(), fine[:, :1].pow(2).sum(),
                        coarse[:, 1:].pow(2).sum(), fine[:, 1:].pow(2).sum()]) / ycc[:, :1].numel()


def gradient_in_ycc(grad_rgb: torch.Tensor) -> torch.Tensor:
    """A gradient with respect to RGB, as one with respect to Y, Cb, Cr: rgb = YCC^-1 y, so
    grad_y = YCC^-T grad_rgb."""
    return torch.einsum("ji,njhw->nihw", RGB_OF_YCC, grad_rgb)


def gradient_shares(d: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Each band's share of the energy of grad D with respect to the images' Y, Cb, Cr."""
    # images in [-1, 1] are 2 * rgb - 1; the factor 2 is the same in every band
    energy = band_energy(gradient_in_ycc(input_gradient(d, images)))
    return energy / energy.sum()


def chroma_blur(images: torch.Tensor, times: int) -> torch.Tensor:
    """Images in [-1, 1] with their Cb and Cr blurred `times` times by the 3x3 box, Y kept."""
    ycc = to_ycc(images)  # linear: the [-1, 1] offset stays in Y
    colour = ycc[:, 1:]
    for _ in range(times):
        colour = blur3(colour)
    out = torch.einsum("ij,njhw->nihw", RGB_OF_YCC, torch.cat([ycc[:, :1], colour], 1))
    return out.clamp(-1, 1)


def chroma_row(name: str, state: dict, reals: torch.Tensor) -> str:
    from model.sampling import networks_from_checkpoint, run_generator, sample_noise
    from model.swd import pyramid_descriptors, swd

    g_ema, _ = networks_from_checkpoint(state)
    ema = run_generator(g_ema, sample_noise(3, range(IMAGES), g_ema.nz)).float()
    real_desc, real_stats = pyramid_descriptors(reals), colour_stats(reals)
    real_luma = fine_energy(to_ycc(reals.add(1).div(2))[:, 0])
    cells = []
    for times in (0, 1, 2):
        faces = chroma_blur(ema, times)
        luma = fine_energy(to_ycc(faces.add(1).div(2).clamp(0, 1))[:, 0]) / real_luma
        cells.append(f"{swd(real_desc, faces)['swd']:.1f}, colour {float(colour_stats(faces)[4] / real_stats[4]):.2f}, "
                     f"luma {float(luma):.2f}")
    return f"| {name} | " + " | ".join(cells) + " |"


GRID_PERIODS = (2, 3, 6)


def input_gradient(d: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    x = images.detach().clone().requires_grad_(True)
    d(x).sum().backward()
    return x.grad


def period_row(name: str, state: dict) -> str:
    from model.sampling import networks_from_checkpoint, run_generator, sample_noise

    g_raw, d = networks_from_checkpoint({**state, "generator_ema": None}, with_discriminator=True)
    fakes = run_generator(g_raw, sample_noise(3, range(IMAGES), g_raw.nz)).float()
    spectra = [power_spectrum(input_gradient(d.to(memory_format=torch.contiguous_format), fakes)),
               power_spectrum(input_gradient(untrained_like(state["config"]), fakes)), power_spectrum(fakes)]
    return f"| {name} | " + " | ".join(" / ".join(f"{prominence(sp, p):.2f}" for sp in spectra)
                                       for p in GRID_PERIODS) + " |"


def untrained_like(cfg_dict: dict) -> torch.nn.Module:
    from model.config import TrainConfig
    from model.networks import networks_for

    _, d = networks_for(TrainConfig.from_dict(cfg_dict))
    return d.eval()


def report(name: str, state: dict, reals: torch.Tensor) -> list[str]:
    from model.sampling import networks_from_checkpoint, run_generator, sample_noise

    g_ema, d = networks_from_checkpoint(state, with_discriminator=True)
    g_raw, _ = networks_from_checkpoint({**state, "generator_ema": None})
    noise = sample_noise(3, range(IMAGES), g_raw.nz)
    fakes, ema = run_generator(g_raw, noise).float(), run_generator(g_ema, noise).float()
    d = d.to(memory_format=torch.contiguous_format)
    noise_ratio = float(colour_stats(ema)[4] / colour_stats(reals)[4])
    rows = []
    for label, net, images in (("trained D, data", d, reals), ("trained D, G's", d, fakes),
                               ("untrained D, data", untrained_like(state["config"]), reals)):
        s = gradient_shares(net, images)
        rows.append(f"| {name} | {label} | " + " | ".join(f"{v:.3f}" for v in s.tolist())
                    + f" | {float(s[3] / (s[1] + s[3])):.3f} | {noise_ratio:.2f} |")
    return rows


def isotropic_row() -> str:
    """A gradient with no preference: white noise in RGB, seen in Y, Cb, Cr."""
    g = torch.randn(64, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    s = band_energy(gradient_in_ycc(g))
    s = s / s.sum()
    return ("| - | white noise | " + " | ".join(f"{v:.3f}" for v in s.tolist())
            + f" | {float(s[3] / (s[1] + s[3])):.3f} | - |")


def reals_of(data_dir: Path, cache: Path | None) -> torch.Tensor:
    from model.data import load_dataset

    ds = load_dataset(data_dir, 96, cache)
    pick = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[:IMAGES].sort().values
    return torch.from_numpy(ds.images[pick.numpy()]).float() / 127.5 - 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, help="a quality_bench --work folder: every <set>/<config>/state.pt")
    ap.add_argument("--state", type=Path, help="one checkpoint (a job's, or a quality_bench state.pt)")
    ap.add_argument("--data", type=Path, help="the checkpoint's training images (with --state)")
    ap.add_argument("--chroma", action="store_true", help="also SWD with G's colour detail blurred away")
    ap.add_argument("--periods", action="store_true", help="also the period-2, 3 and 6 peaks of D's gradient")
    args = ap.parse_args()
    if not args.work and not (args.state and args.data):
        ap.error("give --work, or --state and --data")
    torch.set_num_threads(1)
    if args.state:
        runs = [(args.data, None, [(args.state.name, args.state)])]
    else:
        runs = [(args.work / "data" / d.name, args.work / "cache",
                 [(f"{d.name}/{path.parent.name}", path) for path in sorted(d.glob("*/state.pt"))])
                for d in sorted(p for p in args.work.iterdir() if (args.work / "data" / p.name).is_dir())]
    print(f"| run | D, images | {' | '.join(BANDS)} | colour share of fine | colour noise |")
    print("|---|---|" + "---|" * (len(BANDS) + 2))
    print(isotropic_row())
    chroma = ["", "| run | as made: SWD, colour noise, fine luma | Cb, Cr blurred once | twice |", "|---|---|---|---|"]
    periods = ["", "| run | " + " | ".join(f"period {p}: trained D / untrained D / G's images" for p in GRID_PERIODS)
               + " |", "|---|" + "---|" * len(GRID_PERIODS)]
    for data_dir, cache, named_paths in runs:
        reals = reals_of(data_dir, cache)
        for name, path in named_paths:
            saved = torch.load(path, weights_only=True)
            state = saved.get("trainer", saved)
            try:
                for row in report(name, state, reals):
                    print(row, flush=True)
                if args.chroma:
                    chroma.append(chroma_row(name, state, reals))
                if args.periods:
                    periods.append(period_row(name, state))
            except (RuntimeError, ConfigError) as exc:  # a state saved by other code (layers or options differ)
                print(f"skipped {path}: {str(exc).splitlines()[0]}", file=sys.stderr)
    if args.chroma:
        print("\n".join(chroma))
    if args.periods:
        print("\n".join(periods))

if __name__ == "__main__":
    main()
