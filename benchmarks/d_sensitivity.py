"""What the discriminator looks at: the energy of D's input gradient in four bands (luma and
colour difference, each coarse and fine), for trained Ds against an untrained one and against a
gradient with no preference. G learns only through that gradient, so a band D hardly weighs is one
G is hardly corrected in (the colour-noise question of BENCHMARKS.md, "Upsampling and colour").

    python benchmarks/d_sensitivity.py --work /work/qwork             # every run of a quality_bench --work
    python benchmarks/d_sensitivity.py --state run/checkpoints/epoch-0010.pt --data faces/

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

from model.spectrum import YCC, blur3, colour_stats  # noqa: E402

IMAGES = 256
BANDS = ("luma coarse", "luma fine", "colour coarse", "colour fine")


def band_energy(ycc: torch.Tensor) -> torch.Tensor:
    """Mean squared value of (N, 3, H, W) Y, Cb, Cr in each of BANDS (summed over Cb and Cr)."""
    coarse = blur3(ycc)
    fine = ycc - coarse
    return torch.stack([coarse[:, :1].pow(2).sum(), fine[:, :1].pow(2).sum(),
                        coarse[:, 1:].pow(2).sum(), fine[:, 1:].pow(2).sum()]) / ycc[:, :1].numel()


def gradient_in_ycc(grad_rgb: torch.Tensor) -> torch.Tensor:
    """A gradient with respect to RGB, as one with respect to Y, Cb, Cr: rgb = YCC^-1 y, so
    grad_y = YCC^-T grad_rgb."""
    return torch.einsum("ji,njhw->nihw", torch.linalg.inv(YCC), grad_rgb)


def gradient_shares(d: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Each band's share of the energy of grad D with respect to the images' Y, Cb, Cr."""
    x = images.detach().clone().requires_grad_(True)
    d(x).sum().backward()
    # x in [-1, 1] is 2 * rgb - 1; the factor 2 is the same in every band
    energy = band_energy(gradient_in_ycc(x.grad))
    return energy / energy.sum()


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
    args = ap.parse_args()
    if not args.work and not (args.state and args.data):
        ap.error("give --work, or --state and --data")
    torch.set_num_threads(1)
    print(f"| run | D, images | {' | '.join(BANDS)} | colour share of fine | colour noise |")
    print("|---|---|" + "---|" * (len(BANDS) + 2))
    print(isotropic_row())
    if args.state:
        state = torch.load(args.state, weights_only=True)
        for row in report(args.state.name, state.get("trainer", state), reals_of(args.data, None)):
            print(row, flush=True)
        return
    for set_dir in sorted(p for p in args.work.iterdir() if (args.work / "data" / p.name).is_dir()):
        reals = reals_of(args.work / "data" / set_dir.name, args.work / "cache")
        for path in sorted(set_dir.glob("*/state.pt")):
            state = torch.load(path, weights_only=True)["trainer"]
            try:
                rows = report(f"{set_dir.name}/{path.parent.name}", state, reals)
            except RuntimeError as exc:  # a state saved by other code (its layers differ)
                print(f"skipped {path}: {str(exc).splitlines()[0]}", file=sys.stderr)
                continue
            for row in rows:
                print(row, flush=True)


if __name__ == "__main__":
    main()
