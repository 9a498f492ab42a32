"""Do the sampling options help? SWD of each option's faces against the training images, for
generators that benchmarks/quality_bench.py trained (one per image set), on the same noise.

    python benchmarks/sampling_bench.py --work .bench/quality --config fast --pictures docs

Options, each on the same 512 noise vectors (seed 1, faces 0..511):
  ema            the EMA generator as the service samples it (the reference)
  raw            the raw generator the EMA follows
  resample psi   BigGAN's truncation, what `truncation=psi` does: components beyond +-psi redrawn
  scale psi      z * psi, the "truncation" of many DCGAN write-ups
  best_of K      K x 512 candidates, the 512 that D scores highest (what `best_of` does)
Prints per image set the SWD x10^3, the checkerboard figure and saturation of each option (lower
SWD is better; a sample that loses variety scores worse even if each face looks cleaner), and
draws each option's first 36 faces side by side.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model import spectrum  # noqa: E402
from model.config import TrainConfig  # noqa: E402
from model.data import load_dataset  # noqa: E402
from model.imageio import grid_rgb  # noqa: E402
from model.networks import networks_for  # noqa: E402
from model.sampling import run_generator, sample_noise  # noqa: E402
from model.swd import pyramid_descriptors, swd  # noqa: E402

N = 512
SIDE = 6
PICTURED = ("ema", "resample 1", "resample 2", "scale 0.8", "best_of 2x", "best_of 8x")


def generators(state: dict) -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]:
    """EMA G, raw G and D of a quality_bench state, in eval mode."""
    cfg = TrainConfig.from_dict(state["config"])
    nets = []
    for key in ("generator_ema", "generator"):
        g, _ = networks_for(cfg)
        g.load_state_dict(state[key] or state["generator"])
        nets.append(g.eval().requires_grad_(False))
    _, d = networks_for(cfg)
    d.load_state_dict(state["discriminator"])
    return nets[0], nets[1], d.eval().requires_grad_(False)


@torch.no_grad()
def best_of(g: torch.nn.Module, d: torch.nn.Module, noise: torch.Tensor, k: int) -> torch.Tensor:
    """The len(noise) of k*len(noise) candidates D scores highest (the first len(noise) are
    `noise` itself, the rest from seed 2), in index order."""
    extra = sample_noise(2, range((k - 1) * len(noise)), noise.shape[1]) if k > 1 else noise[:0]
    pool = torch.cat([noise, extra])
    images = run_generator(g, pool)
    scores = torch.cat([d(images[i:i + 256]) for i in range(0, len(images), 256)])
    keep = torch.sort(torch.topk(scores, len(noise)).indices).values
    return images[keep]


def options(g_ema, g_raw, d, nz: int) -> dict[str, torch.Tensor]:
    base = sample_noise(1, range(N), nz)
    out = {"ema": run_generator(g_ema, base), "raw": run_generator(g_raw, base)}
    for psi in (0.5, 1.0, 1.5, 2.0):
        out[f"resample {psi:g}"] = run_generator(g_ema, sample_noise(1, range(N), nz, truncation=psi))
    for psi in (0.5, 0.8):
        out[f"scale {psi:g}"] = run_generator(g_ema, base * psi)
    for k in (2, 4, 8):
        out[f"best_of {k}x"] = best_of(g_ema, d, base, k)
    return out


def measure(work: Path, dataset: str, config: str) -> tuple[list[dict], dict[str, torch.Tensor]]:
    state = torch.load(work / dataset / config / "state.pt", weights_only=True)["trainer"]
    data = load_dataset(work / "data" / dataset, 96, work / "cache")
    pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:N]
    real = torch.from_numpy(data.images[np.sort(pick.numpy())]).float().div_(127.5).sub_(1)
    desc, spec, col = pyramid_descriptors(real, seed=0), spectrum.power_spectrum(real), spectrum.colour_stats(real)
    g_ema, g_raw, d = generators(state)
    rows, faces = [], {}
    for name, images in options(g_ema, g_raw, d, g_ema.nz).items():
        rows.append({"option": name, "swd": round(swd(desc, images, seed=0)["swd"], 2),
                     **spectrum.artefact(spec, images), **spectrum.colour(col, images)})
        faces[name] = images[:SIDE * SIDE]
    return rows, faces


def picture(all_faces: dict[str, dict[str, torch.Tensor]], dest: Path) -> None:
    from PIL import Image, ImageDraw, ImageFont

    names = [n for n in next(iter(all_faces.values())) if n in PICTURED]
    tile, label = SIDE * 98 + 2, 22
    canvas = Image.new("RGB", (len(names) * (tile + 8), len(all_faces) * (tile + label)), "white")
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default(size=16)
    for r, (dataset, faces) in enumerate(all_faces.items()):
        for c, name in enumerate(names):
            x, y = c * (tile + 8), r * (tile + label)
            draw.text((x + 4, y + 2), f"{dataset}: {name}", fill="black", font=font)
            canvas.paste(Image.fromarray(grid_rgb(faces[name], nrow=SIDE)), (x, y + label))
    dest.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(dest, quality=85)
    print(f"wrote {dest}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True, help="a quality_bench --work folder")
    ap.add_argument("--datasets", default="synthetic,emoji,avatars")
    ap.add_argument("--config", default="fast", help="whose trained state to sample")
    ap.add_argument("--pictures", type=Path, help="write <dir>/sampling-options.jpg")
    args = ap.parse_args()
    torch.manual_seed(0)
    all_rows, all_faces = {}, {}
    for dataset in filter(None, args.datasets.split(",")):
        rows, faces = measure(args.work, dataset, args.config)
        all_rows[dataset], all_faces[dataset] = rows, faces
        ref = rows[0]["swd"]
        print(f"\n== {dataset} ({args.config}, {N} faces): SWD x10^3 (and over ema's), checkerboard, "
              "saturation, colour noise")
        print("| option | SWD | / ema | artefact | saturation | colour noise |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['option']} | {r['swd']:.1f} | {r['swd'] / ref:.2f} | {r['artefact']:.2f} | "
                  f"{r['saturation_ratio']:.2f} | {r['colour_noise_ratio']:.2f} |")
    (args.work / f"sampling-{args.config}.json").write_text(json.dumps(all_rows, indent=1))
    if args.pictures:
        picture(all_faces, args.pictures / "sampling-options.jpg")


if __name__ == "__main__":
    main()
