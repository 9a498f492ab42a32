"""Everything to check on a GPU machine, in one run of under 8 minutes (see gpu_check.sh):

1. the service on CUDA: a Celery worker and the app (embedded broker) started as `make run`
   starts them; a job of the seed's config on 8,192 synthetic faces for 10 epochs, to
   `succeeded`; `/generate` answered; n=64 and n=1 timed uncached over HTTP;
2. training speed on 51,223 synthetic 96x96 JPEGs (the real set's size and format): one epoch
   of the seed's loop (benchmarks/train_bench.seed_baseline), then model.train at the seed's
   config (3 epochs: decode + warm-up, then steady), the projected 200-epoch job, with
   torch.compile, and host-device synchronisations per step;
3. the `fast` preset (2 epochs: warm-up, then the one reported), at its batch and larger ones;
4. G alone for a 64-face grid, with and without grid + PNG; a profile of each preset's step.

Each figure is printed as it is measured and written at once to
RESULTS/gpu-YYYY-MM-DD.json (default benchmarks/results/, also copied to $OUT when set), so
a run cut short keeps what it measured. A phase that fails or would not fit the time left is
recorded as such and the others go on. `--dry-run`: all of it on the CPU at a tiny size (the
fast tests run this).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.train_bench import seed_baseline  # noqa: E402
from model.presets import resolve  # noqa: E402
from model.train import train  # noqa: E402


@dataclass(frozen=True)
class Size:
    images: int  # the training-speed data set
    service_images: int  # the service job's synthetic faces
    service_epochs: int
    http_calls: int  # uncached /generate calls per n
    epochs: int = 3  # model.train at the seed config: the first includes decoding
    overrides: dict = field(default_factory=dict)  # applied to every config (dry run: tiny nets)
    fast_batches: tuple[int, ...] = (32, 256, 1024)
    budget_s: float = 450.0


FULL = Size(images=51_223, service_images=8192, service_epochs=10, http_calls=25)
DRY = Size(images=192, service_images=64, service_epochs=2, http_calls=3, epochs=2,
           overrides={"ngf": 8, "ndf": 8, "batch_size": 16}, fast_batches=(32,), budget_s=240.0)
# What the results file must hold (benchmarks/results/README in BENCHMARKS.md's GPU section).
REQUIRED = ("device", "torch", "train_job_ok", "seed_loop_s_per_epoch", "seed_s_per_epoch",
            "projected_200_epochs_s", "fast_s_per_epoch", "generate_n64_http_ms", "generate_n1_http_ms")


class Results:
    """Figures by name, each printed and saved (atomically) the moment it is recorded."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths, self.values = paths, {}

    def __setitem__(self, key: str, value: Any) -> None:
        self.values[key] = value
        print(f"  {key} = {value}", flush=True)
        text = json.dumps(self.values, indent=1, default=str)
        for path in self.paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(text)
            os.replace(tmp, path)


class Clock:
    def __init__(self, budget_s: float) -> None:
        self.end = time.monotonic() + budget_s

    def left(self) -> float:
        return self.end - time.monotonic()


def phase(res: Results, clock: Clock, name: str, needs_s: float, fn: Callable[[], None]) -> None:
    """Run one part of the check unless less than `needs_s` seconds are left; a failure is
    recorded and the check goes on."""
    if clock.left() < needs_s:
        res[f"{name}_skipped"] = f"{clock.left():.0f} s left, needs ~{needs_s:.0f}"
        return
    print(f"\n== {name} ({clock.left():.0f} s left)", flush=True)
    t = time.perf_counter()
    try:
        fn()
    except Exception as exc:  # the other phases still run
        res[f"{name}_error"] = f"{type(exc).__name__}: {str(exc)[:400]}"
        traceback.print_exc()
    print(f"   ({name}: {time.perf_counter() - t:.1f} s)", flush=True)


def median_p90_ms(seconds: list[float]) -> tuple[float, float]:
    s = sorted(seconds)
    return round(statistics.median(s) * 1000, 2), round(s[min(len(s) - 1, int(0.9 * len(s)))] * 1000, 2)


# -- 1. the service --------------------------------------------------------------------------
def service(res: Results, clock: Clock, size: Size, device: str, work: Path) -> None:
    from tests.service.stack import AUTH, Stack, client, wait_job

    stack = Stack(work / "stack", None, DEVICE=device)
    try:
        stack.start_worker()
        url = stack.start_app()
        c = client(url)
        job = {"dataset": "synthetic", "synthetic_images": size.service_images, "epochs": size.service_epochs,
               **size.overrides}
        t = time.perf_counter()
        r = c.post("/train", json=job, headers=AUTH)
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        done = wait_job(c, job_id, {"succeeded", "failed", "cancelled"}, timeout=max(10.0, clock.left() - 60))
        res["train_job_s"] = round(time.perf_counter() - t, 1)
        res["train_job_ok"] = done["state"] == "succeeded"
        if not res.values["train_job_ok"]:
            res["train_job_error"] = done.get("error")
            return
        res["train_job_images_per_sec"] = done.get("images_per_sec")
        r = c.get("/generate?seed=42&n=64")
        assert r.status_code == 200 and r.content.startswith(b"\x89PNG"), r.text[:200]
        for n, key in ((64, "generate_n64_http_ms"), (1, "generate_n1_http_ms")):
            times = []
            for k in range(size.http_calls + 2):  # new seeds: every call renders; 2 warm-ups
                t = time.perf_counter()
                r = c.get(f"/generate?seed={100_000 * n + k}&n={n}")
                times.append(time.perf_counter() - t)
                assert r.status_code == 200 and r.headers.get("x-cache") == "miss", r.status_code
            res[key], res[key.replace("_ms", "_p90_ms")] = median_p90_ms(times[2:])
    finally:
        stack.stop()
        if not res.values.get("train_job_ok", True):
            print(stack.log("worker-w1")[-3000:], flush=True)


# -- 2. training speed -----------------------------------------------------------------------
def _write_face(args: tuple[Path, int]) -> None:
    from model.synth import draw_face
    folder, i = args
    draw_face(0, i).save(folder / f"{i:05d}.jpg", quality=95)


def make_dataset(root: Path, count: int) -> float:
    t = time.perf_counter()
    folder = root / "faces"
    folder.mkdir(parents=True, exist_ok=True)
    with Pool() as pool:
        pool.map(_write_face, [(folder, i) for i in range(count)], chunksize=256)
    return time.perf_counter() - t


def ours(data: Path, work: Path, name: str, device: str, size: Size, preset: str | None = None,
         epochs: int | None = None, **overrides) -> dict:
    """model.train on `data`; seconds per epoch, the whole call, and the steady epoch time."""
    epochs = epochs or size.epochs
    cfg = resolve(preset, dict(epochs=epochs, snapshot_epochs=(epochs,), swd_images=512,
                               **size.overrides, **overrides))
    t = time.perf_counter()
    train(cfg, work / name, data_dir=data, device=device, cache_dir=work / "cache")
    total = time.perf_counter() - t
    rows = [json.loads(x) for x in (work / name / "metrics.jsonl").read_text().splitlines()]
    per_epoch = [r["epoch_seconds"] for r in rows if r.get("kind") == "epoch"]
    return {"epoch_seconds": per_epoch, "total": total, "steady": statistics.median(per_epoch[1:] or per_epoch)}


def _trainer(preset: str | None, data: Path, work: Path, device: str, size: Size, name: str):
    """A Trainer for `preset` on the check's data set, outside train() (no run folder written)."""
    from model.data import load_dataset
    from model.plan import plan_for
    from model.rundir import RunDir
    from model.runtime import resolve_device
    from model.train import Trainer

    cfg = resolve(preset, dict(size.overrides))
    return Trainer(cfg, RunDir(work / name), load_dataset(data, 96, work / "cache"),
                   plan_for(cfg, resolve_device(device)))


def _steps(trainer, n: int) -> None:
    last = trainer.step + n
    trainer.run(lambda: trainer.step >= last)


def syncs_per_step(data: Path, work: Path, device: str, size: Size, preset: str | None) -> float | None:
    """Host-device synchronisations in the training step (CUDA's sync debug mode counts them)."""
    if device != "cuda":
        return None
    import warnings

    trainer = _trainer(preset, data, work, device, size, f"sync-{preset}")
    steps = 20
    _steps(trainer, 5)  # warm-up
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            _steps(trainer, steps)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught) / steps


def training(res: Results, clock: Clock, size: Size, device: str, work: Path) -> None:
    data = work / "data"
    res["dataset_write_s"] = round(make_dataset(data, size.images), 1)
    cfg = resolve(None, dict(size.overrides))
    t = time.perf_counter()
    res["seed_loop_s_per_epoch"] = round(seed_baseline(data, cfg, torch.device(device), epochs=1, workers=4)[0], 3)
    res["seed_loop_measured_s"] = round(time.perf_counter() - t, 1)
    plain = ours(data, work, "ours", device, size)
    res["seed_epoch_seconds"] = plain["epoch_seconds"]
    res["seed_s_per_epoch"] = plain["steady"]
    startup = plain["total"] - sum(plain["epoch_seconds"])
    res["startup_and_first_decode_s"] = round(startup, 1)
    res["projected_200_epochs_s"] = round(startup + plain["epoch_seconds"][0] + 199 * plain["steady"], 1)
    res["seed_speedup_vs_seed_loop"] = round(res.values["seed_loop_s_per_epoch"] / plain["steady"], 1)
    res["seed_syncs_per_step"] = syncs_per_step(data, work, device, size, None)
    if clock.left() > 150:
        try:
            compiled = ours(data, work, "ours-compiled", device, size, compile=True)
            res["seed_compile_epoch_seconds"] = compiled["epoch_seconds"]
            res["seed_compile_s_per_epoch"] = compiled["steady"]
        except Exception as exc:
            res["seed_compile_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"


def fast(res: Results, clock: Clock, size: Size, device: str, work: Path) -> None:
    data = work / "data"
    for batch in size.fast_batches:
        key = "fast_s_per_epoch" if batch == 32 else f"fast_b{batch}_s_per_epoch"
        if clock.left() < 60:
            res[f"{key}_skipped"] = "time"
            continue
        r = ours(data, work, f"fast-b{batch}", device, size, preset="fast", epochs=2,
                 **({} if batch == 32 else {"batch_size": batch}))
        res[key.replace("_s_per_epoch", "_epoch_seconds")] = r["epoch_seconds"]
        res[key] = r["epoch_seconds"][-1]
    res["fast_syncs_per_step"] = syncs_per_step(data, work, device, size, "fast")


# -- 4. G alone, and a profile of each step ------------------------------------------------------
def generator(res: Results, device: str, work: Path) -> None:
    from model.checkpoint import load_epoch
    from model.imageio import encode_png, grid_rgb
    from model.sampling import generate, networks_from_checkpoint
    _, state = load_epoch(work / "ours" / "checkpoints")
    g, _ = networks_from_checkpoint(state, device)
    fwd, full = [], []
    for seed in range(25):
        t = time.perf_counter()
        images = generate(g, seed, 64)  # returns on the CPU: includes the copy back
        fwd.append(time.perf_counter() - t)
        encode_png(grid_rgb(images))
        full.append(time.perf_counter() - t)
    res["g_grid64_ms"] = round(statistics.median(fwd[5:]) * 1000, 2)
    res["g_grid64_png_ms"] = round(statistics.median(full[5:]) * 1000, 2)


def backends(res: Results, size: Size, device: str) -> None:
    """G's forward pass per face at batch 1/16/64 in eager, channels_last and bf16/fp16 autocast
    (benchmarks/backend_bench.py, the seed's ngf; the dry run: tiny, without torch.compile)."""
    from benchmarks.backend_bench import measure
    ngf = size.overrides.get("ngf", 64)
    res["backends_ms_per_face"] = measure(torch.device(device), ngf, rounds=5, compile=False)


def profile(res: Results, size: Size, device: str, work: Path, out: Path) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    tables = []
    for preset in (None, "fast"):
        trainer = _trainer(preset, work / "data", work, device, size, f"profile-{preset}")
        _steps(trainer, 10)
        with torch_profile(activities=activities) as prof:
            _steps(trainer, 20)
            if device == "cuda":
                torch.cuda.synchronize()
        sort = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"
        tables.append(f"== {preset or 'seed'}: 20 steps\n" + prof.key_averages().table(sort_by=sort, row_limit=30))
    out.write_text("\n\n".join(tables) + "\n")
    res["profile"] = out.name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="the CPU at a tiny size, to test this script")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--budget", type=float, help="seconds for the whole check (default 450; dry run 240)")
    args = ap.parse_args()
    size = DRY if args.dry_run else FULL
    device = "cpu" if args.dry_run else "cuda"
    day = datetime.date.today().isoformat()
    name = f"gpu-{day}{'-dry-run' if args.dry_run else ''}"
    paths = [args.results / f"{name}.json"]
    if os.environ.get("OUT"):
        paths.append(Path(os.environ["OUT"]) / f"{name}.json")
    res, clock = Results(paths), Clock(args.budget or size.budget_s)
    res["date"] = day
    res["device"] = torch.cuda.get_device_name() if device == "cuda" else "cpu (dry run)"
    res["torch"] = torch.__version__
    res["cuda"] = torch.version.cuda
    res["cpus"] = os.cpu_count()
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    try:
        phase(res, clock, "service", 60, lambda: service(res, clock, size, device, work))
        phase(res, clock, "training", 120, lambda: training(res, clock, size, device, work))
        phase(res, clock, "fast", 60, lambda: fast(res, clock, size, device, work))
        phase(res, clock, "generator", 10, lambda: generator(res, device, work))
        phase(res, clock, "backends", 20, lambda: backends(res, size, device))
        profile_txt = paths[-1].with_suffix(".profile.txt")
        phase(res, clock, "profile", 30, lambda: profile(res, size, device, work, profile_txt))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    missing = [k for k in REQUIRED if k not in res.values]
    res["missing"] = missing
    print("\n== summary\n" + json.dumps(res.values, indent=1, default=str), flush=True)


if __name__ == "__main__":
    main()
