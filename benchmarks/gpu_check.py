"""Everything to measure on a lent GPU machine, in one run of a few minutes (see gpu_check.sh).

1. writes 51,223 synthetic 96x96 faces as JPEGs (the real dataset's size and format);
2. times one epoch of the seed's loop (benchmarks/train_bench.seed_baseline) at the seed config;
3. times model.train at the same config (3 epochs: decode + warm-up, then steady state), with
   and without torch.compile;
4. times one epoch of every other preset (model/presets.py) on the same 51,223 images (2 epochs:
   warm-up, then the one reported);
5. times G for a 64-image grid (forward only, and forward + grid + PNG);
and prints seconds per epoch, the ratios and the projected 200-epoch time.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.train_bench import seed_baseline  # noqa: E402
from model.config import TrainConfig  # noqa: E402
from model.presets import PRESETS, resolve  # noqa: E402
from model.train import train  # noqa: E402


def _write(args: tuple[Path, int]) -> None:
    from model.synth import draw_face
    folder, i = args
    draw_face(0, i).save(folder / f"{i:05d}.jpg", quality=95)


def make_dataset(root: Path, count: int) -> float:
    t = time.perf_counter()
    folder = root / "faces"
    folder.mkdir(parents=True, exist_ok=True)
    with Pool() as pool:
        pool.map(_write, [(folder, i) for i in range(count)], chunksize=256)
    return time.perf_counter() - t


def ours(data: Path, work: Path, name: str, device: str, preset: str | None = None, epochs: int = 3,
         **overrides) -> dict:
    cfg = resolve(preset, dict(epochs=epochs, snapshot_epochs=(epochs,), swd_images=512, **overrides))
    t = time.perf_counter()
    train(cfg, work / name, data_dir=data, device=device, cache_dir=work / "cache")
    total = time.perf_counter() - t
    rows = [json.loads(x) for x in (work / name / "metrics.jsonl").read_text().splitlines()]
    epochs = [r["epoch_seconds"] for r in rows if r.get("kind") == "epoch"]
    return {"epoch_seconds": epochs, "total": total, "steady": statistics.median(epochs[1:])}


def grid_times(run: Path, device: str) -> tuple[float, float]:
    from model.checkpoint import load_epoch
    from model.imageio import encode_png, grid_rgb
    from model.sampling import generate, networks_from_checkpoint
    _, state = load_epoch(run / "checkpoints")
    g, _ = networks_from_checkpoint(state, device)
    fwd, full = [], []
    for seed in range(25):
        t = time.perf_counter()
        images = generate(g, seed, 64)  # returns on the CPU: includes the copy back
        fwd.append(time.perf_counter() - t)
        encode_png(grid_rgb(images))
        full.append(time.perf_counter() - t)
    return statistics.median(fwd[5:]) * 1000, statistics.median(full[5:]) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=51_223)
    ap.add_argument("--device", default="cuda", help="cpu only for a smoke run of this script")
    args = ap.parse_args()
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(f"torch {torch.__version__}, {name}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "data"
        print(f"dataset: {args.images} JPEGs written in {make_dataset(data, args.images):.1f} s", flush=True)
        cfg = TrainConfig()
        t = time.perf_counter()
        base = seed_baseline(data, cfg, torch.device(args.device), epochs=1, workers=4)[0]
        print(f"baseline (seed loop, DataLoader x4, fp32): {base:.2f} s/epoch "
              f"(measured in {time.perf_counter() - t:.0f} s)", flush=True)
        plain = ours(data, work, "ours", args.device)
        print(f"ours: epochs {plain['epoch_seconds']} s; whole call {plain['total']:.1f} s", flush=True)
        try:
            compiled = ours(data, work, "ours-compiled", args.device, compile=True)
            print(f"ours+compile: epochs {compiled['epoch_seconds']} s; whole call {compiled['total']:.1f} s",
                  flush=True)
        except Exception as exc:  # report it and keep the rest of the figures
            print(f"ours+compile FAILED: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
            compiled = {"steady": float("inf")}
        presets = {}
        for preset in (p for p in PRESETS if p != "seed"):  # "seed" is `ours` above
            try:
                r = ours(data, work, f"preset-{preset}", args.device, preset=preset, epochs=2)
                presets[preset] = r["epoch_seconds"][-1]
                print(f"preset {preset}: epochs {r['epoch_seconds']} s", flush=True)
            except Exception as exc:
                print(f"preset {preset} FAILED: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
        g_ms, full_ms = grid_times(work / "ours", args.device)
    best = min(plain["steady"], compiled["steady"])
    startup = plain["total"] - sum(plain["epoch_seconds"])
    print("\n== summary ==")
    print(f"seconds/epoch: baseline {base:.2f}, ours {plain['steady']:.3f}, ours+compile {compiled['steady']:.3f}")
    print(f"ratio baseline/ours: {base / plain['steady']:.1f}x (compile: {base / compiled['steady']:.1f}x)")
    print(f"projected 200 epochs: baseline {200 * base / 60:.1f} min; ours {(startup + 200 * best) / 60:.2f} min "
          f"(start-up incl. first decode {startup:.1f} s)")
    print(f"seconds/epoch by preset (51,223 images): seed {plain['steady']:.3f}, "
          + ", ".join(f"{k} {v:.3f}" for k, v in presets.items()))
    print(f"G for a 64-image grid: {g_ms:.2f} ms forward; {full_ms:.2f} ms with grid + PNG")


if __name__ == "__main__":
    main()
