"""How well and how fast POST /project finds a face: model-made faces (they must come back at
>= 20 dB) and, with --images, pictures the model never drew.

    python benchmarks/project_bench.py CHECKPOINT [--faces 3] [--steps 50,100,200] [--starts 8]
                                       [--images DIR --count 2]

For each step bound it projects the same faces (face 0 of seeds 1000, 1001, ...) and prints the
PSNR reached and the seconds taken; the baseline in the same run is the best of the seeded starts
before any step (what the optimisation adds). Seconds are wall time: on a shared machine they
move with its load, PSNR does not.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.checkpoint import load_checkpoint  # noqa: E402
from model.data import decode_image, find_images  # noqa: E402
from model.imageio import to_uint8  # noqa: E402
from model.projection import PROJECT_SEED, project, psnr  # noqa: E402
from model.sampling import networks_from_checkpoint, run_generator, sample_noise  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--faces", type=int, default=3)
    ap.add_argument("--steps", default="50,100,200")
    ap.add_argument("--starts", type=int, default=8)
    ap.add_argument("--images", type=Path, help="a folder of pictures to project as well")
    ap.add_argument("--count", type=int, default=2, help="pictures taken from --images")
    args = ap.parse_args()
    g, _ = networks_from_checkpoint(load_checkpoint(args.checkpoint))
    print(f"{args.checkpoint}: nz {g.nz}, {sum(p.numel() for p in g.parameters()):,} G parameters, "
          f"{torch.get_num_threads()} torch threads")
    targets = [("made", to_uint8(run_generator(g, sample_noise(1000 + k, [0], g.nz)))[0].numpy())
               for k in range(args.faces)]
    if args.images:
        targets += [("picture", decode_image(p, 96)) for p in find_images(args.images)[:args.count]]
    starts = to_uint8(run_generator(g, sample_noise(PROJECT_SEED, range(args.starts), g.nz))).numpy()
    print(f"{'target':8} {'steps':>5} {'start dB':>8} {'dB':>6} {'seconds':>8}")
    for steps in (int(s) for s in args.steps.split(",")):
        for kind in ("made", "picture"):
            rows = []
            for k, target in targets:
                if k != kind:
                    continue
                began = time.perf_counter()
                found = project(g, target, steps, args.starts, seconds=3600)
                rows.append((max(psnr(s, target) for s in starts), found.psnr, time.perf_counter() - began))
            if rows:
                print(f"{kind:8} {steps:5d} {statistics.median(r[0] for r in rows):8.1f} "
                      f"{statistics.median(r[1] for r in rows):6.1f} {statistics.median(r[2] for r in rows):8.1f}"
                      f"   (min dB {min(r[1] for r in rows):.1f})")


if __name__ == "__main__":
    main()
