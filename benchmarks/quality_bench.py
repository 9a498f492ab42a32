"""Time to quality: SWD of the EMA generator against CPU time, for several training configs on the
same data and machine, in one run.

    nice -n 5 python benchmarks/quality_bench.py                    # both image sets, 15 CPU-min each
    python benchmarks/quality_bench.py --datasets synthetic --budget 5 --configs demo,fast
    python benchmarks/quality_bench.py --config 'mine={"loss": "hinge", "g_every": 1}'

Configs (each a TrainConfig; epochs are irrelevant, training stops at the budget; a config with
`lr_decay_from` < 1 decays over the budget, its progress being the CPU time spent / the budget):
  seed      the seed's defaults exactly (ngf/ndf 64, batch 256, BCE, G on every 5th batch)
  seed-g1   the same with G on every batch (g_every 1)
  demo      the demo job's settings before the fast preset: g_every 1, batch 32, ngf/ndf 32
  fast      the `fast` preset (model/presets.py)
  fast-1206    `fast` until 2026-12-07: DiffAugment color,translation,cutout, transposed convs
  fast-resize  fast-1206 with G's upsampling by resize + conv (no transposed convs)
  fast-even    fast-1206 with G's last transposed conv 9x9 (an even overlap at stride 3)
  fast-rl      fast-1206 with resize + conv in G's last (32 -> 96 px) step only
  fast-rlb     fast-rl with a fixed [1, 2, 1] blur after the 16 -> 32 px transposed conv
  fast-1207    `fast` on 2026-12-07: DiffAugment translation,cutout, upsample resize-last-blur
  fast-llb     fast-1207 with a linear in place of the nearest x3 resize (linear-last-blur)
  fast-daa     fast-1207 with a 3x3 box blur on D's input (d_antialias)
  fast-mlb     fast-1207 with half the channels resized linearly in G's last step (mixed-last-blur)
  fast-rsz     fast-1207 with every step a resize + conv (upsample resize; x2 ones as tied transposed convs)
  fast-bal     fast-1207 with its 2x transposed convs' four output phases balanced (balanced-last-blur)
  fast-lrn     fast-1207 with each channel's x3 resize a learned blend of linear and nearest (learned-last-blur)
  fast-bl      fast-bal without the blur after the 16 -> 32 px step (balanced-last): `fast` on 2026-12-08
  fast-blr     fast-bl with each balanced step's input padded by replication (balanced-replicate-last)

What a "CPU minute" is here: 60 s of the training process's own CPU time (time.process_time(),
user + system) with torch limited to ONE thread, counting only training steps; the SWD
measurements and grid renders between them are left out. Other load on the machine does not
inflate it, so configs run side by side (--jobs, one process per config) and on a busy machine
still get the same budget. Single-threaded CPU time is roughly 1.6-1.8x the wall time a
2-thread run takes on a quiet 2-core machine.

Each config's process measures SWD (model/swd.py: 512 real vs 512 generated images, the same
real sample and the same noise for every config) at fixed CPU times, and saves a 6x6 grid of the
same 36 noise vectors at each --grid-minutes. The parent prints, per image set: SWD at every
checkpoint minute, the minutes each config needs to reach thresholds (1.5x, 1x and 2/3 of what
`demo` reaches at the full budget), fast/demo at the budget (and fast-X/demo-X for replicate pairs
named alike, e.g. --config 'demo-s1={..., "seed": 1}' --config 'fast-s1={..., "seed": 1}'), and
writes a side-by-side picture of the grids.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# `fast` as it was until 2026-12-07 (DiffAugment's colour transform, the seed's transposed convs):
# the upsampling variants below are measured against it, and keep meaning what they measured.
FAST_1206 = {"preset": "fast", "diffaugment": "color,translation,cutout", "upsample": "deconv"}
# `fast` as adopted on 2026-12-07, pinned for the variants measured against it.
FAST_1207 = {"preset": "fast", "diffaugment": "translation,cutout", "upsample": "resize-last-blur"}
CONFIGS: dict[str, dict] = {
    "seed": {},
    "seed-g1": {"g_every": 1},
    "demo": {"g_every": 1, "batch_size": 32, "ngf": 32, "ndf": 32},
    "fast": {"preset": "fast"},
    "fast-1206": FAST_1206,
    "fast-resize": {**FAST_1206, "upsample": "resize"},
    "fast-even": {**FAST_1206, "upsample": "even"},
    "fast-rl": {**FAST_1206, "upsample": "resize-last"},
    "fast-rlb": {**FAST_1206, "upsample": "resize-last-blur"},
    "fast-1207": FAST_1207,
    "fast-llb": {**FAST_1207, "upsample": "linear-last-blur"},
    "fast-daa": {**FAST_1207, "d_antialias": True},
    "fast-mlb": {**FAST_1207, "upsample": "mixed-last-blur"},
    "fast-rsz": {**FAST_1207, "upsample": "resize"},
    "fast-bal": {**FAST_1207, "upsample": "balanced-last-blur"},
    "fast-lrn": {**FAST_1207, "upsample": "learned-last-blur"},
    "fast-bl": {**FAST_1207, "upsample": "balanced-last"},
    "fast-blr": {**FAST_1207, "upsample": "balanced-replicate-last"},
}
# CPU minutes at which SWD is measured.
CHECKPOINTS = (1, 2, 3, 5, 7.5, 10, 15, 20, 30)
SWD_IMAGES = 512
# CPU seconds between two saves of a run's state: an interrupted benchmark (--work kept) resumes.
SAVE_EVERY_S = 30
GRID_SIDE = 6


# -- one config, in its own single-threaded process ---------------------------------------------
def run_one(data_dir: Path, overrides: dict, budget_min: float, out: Path, grid_minutes: list[float],
            cache_dir: Path) -> None:
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    from model.data import load_dataset
    from model.fsutil import atomic_write_bytes
    from model.imageio import encode_png, grid_rgb
    from model.plan import plan_for
    from model.quality import QualityProbe
    from model.rundir import RunDir
    from model.runtime import tune_host_allocator
    from model.sampling import sample_noise
    from model.train import Trainer

    tune_host_allocator()
    cfg = resolved_config(overrides)
    check_same_config(out, cfg.to_dict())
    dataset = load_dataset(data_dir, cfg.image_size, cache_dir)
    device = torch.device("cpu")
    out.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(cfg, RunDir(out / "run"), dataset, plan_for(cfg, device))
    # The same reals and noise for every config (seeds fixed here, not the config's).
    probe = QualityProbe(dataset, SWD_IMAGES, seed=0, noise_seed=1, nz=cfg.nz, device=device)
    grid_noise = sample_noise(7, range(GRID_SIDE * GRID_SIDE), cfg.nz)

    points = [m for m in CHECKPOINTS if m < budget_min] + [budget_min]
    grids = sorted(set(grid_minutes) & set(points))
    rows, spent, wall_before, d_stats = [], 0.0, 0.0, []
    state_path = out / "state.pt"
    if state_path.exists():  # an interrupted run goes on where its last save left it, to the bit
        saved = torch.load(state_path, weights_only=True)
        if not same_config(saved["trainer"]["config"], cfg.to_dict()):
            raise SystemExit(f"{state_path} was written by another config than {out.name!r} is now; "
                             f"delete {out} or use another --work")
        trainer.restore(saved["trainer"])
        spent, wall_before = float(saved["cpu_s"]), float(saved["wall_s"])
        rows = json.loads((out / "result.json").read_text())["rows"] if (out / "result.json").exists() else []
        # A row belongs to the saved state if its minute was passed by then (its cpu_s is rounded,
        # so it may read a hair above the saved CPU time).
        rows = [r for r in rows if r["minutes"] * 60 <= spent]
        points = [m for m in points if m * 60 > spent]
        print(f"  {out.parent.name}/{out.name}: resumed at {spent / 60:.2f} CPU-min, step {trainer.step}", flush=True)
    wall0 = time.perf_counter()
    spe = trainer.steps_per_epoch
    next_save = spent + SAVE_EVERY_S

    def save() -> None:
        torch.save({"trainer": trainer.state(), "cpu_s": spent,
                    "wall_s": wall_before + time.perf_counter() - wall0}, out / "state.tmp")
        os.replace(out / "state.tmp", state_path)

    def measure(minute: float) -> None:
        nonlocal d_stats
        fake = trainer.generate(probe.noise)
        res = probe.swd(fake)
        d = torch.stack(d_stats).mean(0).tolist() if d_stats else [None] * 3
        d_stats = []
        rows.append({"minutes": minute, "cpu_s": round(spent, 2), "step": trainer.step,
                     "epoch": trainer.step / spe, "g_updates": trainer.g_updates,
                     "images_seen": trainer.step * cfg.batch_size, "swd": round(res["swd"], 3),
                     "swd_levels": [round(v, 3) for v in res["swd_levels"]],
                     **probe.looks(fake),
                     "loss_d": d[0], "d_x": d[1], "d_g_z": d[2],
                     "wall_s": round(wall_before + time.perf_counter() - wall0, 1)})
        if minute in grids:
            png = encode_png(grid_rgb(trainer.generate(grid_noise), nrow=GRID_SIDE))
            atomic_write_bytes(out / f"grid-{minute:g}min.png", png)
        atomic_write_bytes(out / "result.json",
                           json.dumps({"config": cfg.to_dict(), "rows": rows}, indent=1).encode())
        print(f"  {out.parent.name}/{out.name}: {minute:g} CPU-min, SWD {res['swd']:.1f}, step {trainer.step}",
              flush=True)

    # The budget counts the CPU time of training batches only: the clock restarts after the
    # bookkeeping below, so SWD measurements, grids and saves are left out of it.
    started = time.process_time()

    def after_batch(d: torch.Tensor | None, _g: torch.Tensor | None) -> None:
        nonlocal spent, started, next_save
        spent += time.process_time() - started
        if d is not None:
            d_stats.append(d)
        if spent >= points[0] * 60:
            measure(points.pop(0))
        if points and spent >= next_save:
            save()
            next_save = spent + SAVE_EVERY_S
        started = time.process_time()

    # The budget is the job's length here: with lr_decay_from < 1 the rates decay over the CPU
    # time, not over `epochs` (which never ends a run).
    trainer.run(lambda: not points, lr_progress=lambda: spent / (budget_min * 60), after_batch=after_batch)
    save()


def resolved_config(overrides: dict):
    """The TrainConfig a config's JSON stands for (its preset applied); epochs never end a run."""
    from model.presets import resolve

    overrides = dict(overrides)
    preset = overrides.pop("preset", None)
    return resolve(preset, {"epochs": 100_000, "swd_images": 0, **overrides})


def same_config(stored: dict | None, config: dict) -> bool:
    """A config stored before a field existed reads that field as its default (TrainConfig.from_dict),
    so a field added since does not orphan the runs already measured."""
    from model.config import ConfigError, TrainConfig

    try:
        return stored is not None and TrainConfig.from_dict(stored).to_dict() == config
    except ConfigError:
        return False


def check_same_config(out: Path, config: dict) -> None:
    """A work folder's run of a name is resumed or reused only for the config that made it: a
    preset that changed since, or a name given to another JSON, must not continue someone else's
    training or report its figures."""
    path = out / "result.json"
    if path.exists() and not same_config(json.loads(path.read_text()).get("config"), config):
        raise SystemExit(f"{out} holds a run of another config than {out.name!r} is now; "
                         f"delete that folder or use another --work")


def add_missing_looks(work: Path, dataset: str, name: str, rows: list[dict], budget: float) -> None:
    """A finished run measured before a look existed (artefact_p6, then artefact_p4 and _p12 came on
    2026-12-07) gets it
    from its final saved state: the same EMA G, noise and reals as the run's own measurement
    (QualityProbe's seeds), so the figures it had already are reproduced, not changed. The row
    gains only the keys it lacked, in result.json too."""
    import torch

    from model.data import load_dataset
    from model.fsutil import atomic_write_bytes
    from model.quality import QualityProbe
    from model.sampling import networks_from_checkpoint, run_generator
    from model.spectrum import DIAGNOSTIC_PERIODS

    last = rows[-1] if rows else None
    state_path = work / dataset / name / "state.pt"
    looks_now = [f"artefact_p{p}" for p in DIAGNOSTIC_PERIODS]
    if last is None or last["minutes"] < budget or all(k in last for k in looks_now) or not state_path.exists():
        return
    saved = torch.load(state_path, weights_only=True)
    if round(float(saved["cpu_s"]), 2) < last["cpu_s"]:
        return  # not the state that row was measured on
    g, _ = networks_from_checkpoint(saved["trainer"])
    device = torch.device("cpu")
    probe = QualityProbe(load_dataset(work / "data" / dataset, 96, work / "cache"), SWD_IMAGES, seed=0,
                         noise_seed=1, nz=g.nz, device=device)
    looks = probe.looks(run_generator(g, probe.noise, device))
    last.update({k: v for k, v in looks.items() if k not in last})
    out = work / dataset / name / "result.json"
    body = json.loads(out.read_text())
    body["rows"] = rows
    atomic_write_bytes(out, json.dumps(body, indent=1).encode())


# -- the parent: data, processes, tables, pictures -----------------------------------------------
def parse_configs(names: str, extra: list[str]) -> dict[str, dict]:
    out = {}
    for name in filter(None, names.split(",")):
        if name not in CONFIGS:
            raise SystemExit(f"unknown config {name!r}; known: {', '.join(CONFIGS)} (or --config NAME=JSON)")
        out[name] = CONFIGS[name]
    for item in extra:
        name, _, body = item.partition("=")
        out[name] = json.loads(body)
    return out


def minutes_to(rows: list[dict], threshold: float) -> float | None:
    return next((r["minutes"] for r in rows if r["swd"] <= threshold), None)


def swd_at(rows: list[dict], minute: float) -> float | None:
    return next((r["swd"] for r in rows if r["minutes"] == minute), None)


def print_tables(dataset: str, results: dict[str, list[dict]], budget: float, marks: list[float]) -> str:
    from model.spectrum import DIAGNOSTIC_PERIODS

    results = {name: rows for name, rows in results.items() if rows}  # not run on this set
    lines = [f"\n== {dataset}: SWD x10^3 of the EMA generator (lower is better) at CPU minutes =="]
    minutes = [m for m in CHECKPOINTS if m < budget] + [budget]
    shown = minutes
    lines.append("| config | " + " | ".join(f"{m:g} min" for m in shown) + " | G updates | images seen |")
    lines.append("|---|" + "---|" * (len(shown) + 2))
    for name, rows in results.items():
        cells = [f"{swd_at(rows, m):.1f}" if swd_at(rows, m) is not None else "-" for m in shown]
        last = rows[-1] if rows else {}
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {last.get('g_updates', '-')} | "
                     f"{last.get('images_seen', '-')} |")
    lines.append(f"\n{dataset}: checkerboard (artefact: generated peak prominence at periods 2 and 3 over the "
                 f"data's; 1 = like the data; periods {', '.join(map(str, DIAGNOSTIC_PERIODS))} beside it), "
                 f"saturation, brightness and colour noise over the data's, at {budget:g} CPU-min")
    lines.append("| config | artefact | period 2 | period 3 | " + "".join(f"period {p} | " for p in DIAGNOSTIC_PERIODS)
                 + "saturation | brightness | colour noise |")
    lines.append("|---|---|---|---|" + "---|" * len(DIAGNOSTIC_PERIODS) + "---|---|---|")
    for name, rows in results.items():
        last = next((r for r in rows if r["minutes"] == budget), None)
        if last is not None and "artefact" in last:
            diagnostic = "".join(f"{last.get(f'artefact_p{p}', float('nan')):.2f} | " for p in DIAGNOSTIC_PERIODS)
            lines.append(f"| {name} | {last['artefact']:.2f} | {last['artefact_p2']:.2f} | {last['artefact_p3']:.2f} "
                         f"| {diagnostic}{last['saturation_ratio']:.2f} "
                         f"| {last['brightness_ratio']:.2f} "
                         f"| {last.get('colour_noise_ratio', float('nan')):.2f} |")
    ref = swd_at(results.get("demo", []), budget)
    if ref is not None:
        thresholds = [(f"{f}x demo@{budget:g}", ref * v) for f, v in (("1.5", 1.5), ("1", 1.0), ("2/3", 2 / 3))]
        lines.append(f"\nCPU minutes to reach an SWD (thresholds relative to demo's {ref:.1f} at {budget:g} min;"
                     f" '>' = not within the budget; resolution = the checkpoint minutes)")
        lines.append("| config | " + " | ".join(f"{label} = {t:.1f}" for label, t in thresholds) + " |")
        lines.append("|---|" + "---|" * len(thresholds))
        for name, rows in results.items():
            cells = []
            for _, t in thresholds:
                m = minutes_to(rows, t)
                cells.append(f"{m:g}" if m is not None else f">{budget:g}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    # fast against demo, and each replicate pair named alike (fast-s1 against demo-s1, ...)
    for name in (n for n in results if n.startswith("fast")):
        sfx = name[len("fast"):]
        d_name = "demo" + sfx
        f_end, d_end = swd_at(results[name], budget), swd_at(results.get(d_name, []), budget)
        if f_end is None or d_end is None:
            continue
        lines.append(f"\n{name} / {d_name} at {budget:g} CPU-min: {f_end:.1f} / {d_end:.1f} = "
                     f"{f_end / d_end:.2f} ({'meets' if f_end <= d_end * 2 / 3 else 'misses'} the <= 2/3 target)")
        for m in marks:
            f_m, d_m = swd_at(results[name], m), swd_at(results[d_name], m)
            if f_m is not None and d_m is not None and m != budget:
                lines.append(f"{name} / {d_name} at {m:g} CPU-min: {f_m:.1f} / {d_m:.1f} = {f_m / d_m:.2f}")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


TILE = GRID_SIDE * 96 + (GRID_SIDE + 1) * 2  # a 6x6 grid of 96 px faces, 2 px apart
LABEL_H = 22


def real_grid(data_dir: Path) -> Any:
    """A 6x6 grid of training images (the same ones for every call on a set)."""
    import numpy as np
    from PIL import Image

    from model.data import decode_image, find_images

    files = find_images(data_dir)
    rng = np.random.default_rng(0)
    grid = Image.new("RGB", (TILE, TILE), "black")
    for k, i in enumerate(rng.choice(len(files), GRID_SIDE * GRID_SIDE, replace=False)):
        face = Image.fromarray(decode_image(files[i], 96).transpose(1, 2, 0))
        grid.paste(face, (2 + (k % GRID_SIDE) * 98, 2 + (k // GRID_SIDE) * 98))
    return grid


def draw_table(rows: list[list[tuple[str, Any]]], dest: Path) -> None:
    """Labelled grids in rows (a None grid leaves its cell empty), saved as a JPEG: a tenth of the
    PNG's size, and the grids stay legible."""
    from PIL import Image, ImageDraw, ImageFont

    cols = max(len(r) for r in rows)
    canvas = Image.new("RGB", (cols * (TILE + 8), len(rows) * (TILE + LABEL_H)), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=16)
    for r, cells in enumerate(rows):
        for c, (label, im) in enumerate(cells):
            if im is None:
                continue
            x, y = c * (TILE + 8), r * (TILE + LABEL_H)
            draw.text((x + 4, y + 2), label, fill="black", font=font)
            canvas.paste(im.convert("RGB").resize((TILE, TILE)), (x, y + LABEL_H))
    dest.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(dest, quality=88)
    print(f"wrote {dest}", flush=True)


def grid_at(work: Path, dataset: str, name: str, minute: float) -> tuple[str, Any]:
    from PIL import Image

    p = work / dataset / name / f"grid-{minute:g}min.png"
    return f"{name}, {minute:g} CPU-min", Image.open(p) if p.exists() else None


def side_by_side(dataset: str, data_dir: Path, work: Path, names: list[str], marks: list[float],
                 dest: Path, latest: bool = False) -> None:
    """One picture: training images first, then each config's grid at each mark (one row per
    mark), and with `latest` a row of each run's grid at its last saved state."""
    rows = [[grid_at(work, dataset, name, m) for name in names] for m in marks]
    rows = [cells for cells in rows if any(im is not None for _, im in cells)]
    if latest:
        cells = grids_from_states(work, dataset, names, done_at=max(marks, default=0))
        if any(im is not None for _, im in cells):
            rows.append(cells)
    rows = rows or [[]]
    rows[0].insert(0, (f"training data ({dataset})", real_grid(data_dir)))
    for cells in rows[1:]:
        cells.insert(0, ("", None))
    draw_table(rows, dest)


def sheet(datasets: list[str], work: Path, names: list[str], minute: float, dest: Path) -> None:
    """One picture of every set: a row each, its training images then each config's grid at
    `minute` CPU minutes."""
    draw_table([[(f"training data ({ds})", real_grid(work / "data" / ds))]
                + [grid_at(work, ds, name, minute) for name in names] for ds in datasets], dest)


def grids_from_states(work: Path, dataset: str, names: list[str], done_at: float = float("inf")
                      ) -> list[tuple[str, Any]]:
    """Each run's grid at its last saved state (for a picture of runs still in progress); a run
    without one, or saved at `done_at` CPU minutes or later (its grid is in a mark's row), gets
    an empty cell, so the columns stay those of `names`."""
    import torch
    from PIL import Image

    from model.imageio import grid_rgb
    from model.sampling import networks_from_checkpoint, run_generator, sample_noise

    out = []
    for name in names:
        path = work / dataset / name / "state.pt"
        saved = torch.load(path, weights_only=True) if path.exists() else None
        if saved is None or saved["cpu_s"] >= done_at * 60:
            out.append((name, None))
            continue
        g, _ = networks_from_checkpoint(saved["trainer"])
        images = run_generator(g, sample_noise(7, range(GRID_SIDE * GRID_SIDE), g.nz))
        label = f"{name}, {saved['cpu_s'] / 60:.1f} CPU-min"
        out.append((label, Image.fromarray(grid_rgb(images, nrow=GRID_SIDE))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="synthetic,emoji")
    ap.add_argument("--configs", default="seed,seed-g1,demo,fast")
    ap.add_argument("--config", action="append", default=[], metavar="NAME=JSON",
                    help="an extra config: TrainConfig fields (and optionally \"preset\") as JSON")
    ap.add_argument("--budget", type=float, default=15.0, help="CPU minutes per config")
    ap.add_argument("--marks", default="5,15", help="CPU minutes reported side by side and drawn")
    ap.add_argument("--jobs", type=int, default=2, help="configs trained at once (one core each)")
    ap.add_argument("--work", type=Path, help="keep data, grids and results here (default: a temp dir)")
    ap.add_argument("--pictures", type=Path, help="write <dir>/quality-<dataset>.jpg here")
    ap.add_argument("--sheet", type=Path, metavar="JPG",
                    help="also one picture of every set at the budget: a row per set, a column per config")
    ap.add_argument("--order", choices=("config", "set"), default="config",
                    help="train every set for one config before the next (config), or every config "
                         "for one set before the next (set: a set's comparison finishes first)")
    ap.add_argument("--nice", type=int, default=0, help="added niceness of each config's process")
    ap.add_argument("--report", action="store_true",
                    help="train nothing: print the tables of what --work holds so far and draw each run's "
                         "latest saved state too (runs in progress resume on a later run without it)")
    ap.add_argument("--one", nargs=3, metavar=("DATA_DIR", "JSON", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    marks = [float(m) for m in args.marks.split(",") if m]

    if args.one:
        os.nice(args.nice)
        run_one(Path(args.one[0]), json.loads(args.one[1]), args.budget, Path(args.one[2]), marks,
                Path(args.one[2]).parent.parent / "cache")
        return

    from benchmarks.image_sets import MAKERS, MissingFont

    configs = parse_configs(args.configs, args.config)
    tmp = None if args.work else tempfile.TemporaryDirectory()
    work = args.work or Path(tmp.name)
    datasets = [d for d in args.datasets.split(",") if d]
    import torch
    print(f"torch {torch.__version__}; {os.cpu_count()} CPUs; budget {args.budget:g} CPU-min per config, "
          f"1 thread each, {args.jobs} at once; configs: {', '.join(configs)}", flush=True)
    from model.data import load_dataset
    for ds in datasets:
        try:
            MAKERS[ds](work / "data" / ds)
        except MissingFont as exc:
            raise SystemExit(f"{exc} (or leave it out: --datasets synthetic)") from None
        n = len(load_dataset(work / "data" / ds, 96, work / "cache"))  # decoded once, before the runs
        print(f"image set {ds}: {n} images", flush=True)
    if args.order == "set":
        jobs = [(ds, name) for ds in datasets for name in configs]
    else:
        jobs = [(ds, name) for name in configs for ds in datasets]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}

    def launch(job: tuple[str, str]) -> None:
        ds, name = job
        out = work / ds / name
        check_same_config(out, resolved_config(configs[name]).to_dict())
        if (out / "result.json").exists():
            rows = json.loads((out / "result.json").read_text())["rows"]
            if rows and rows[-1]["minutes"] >= args.budget:
                return  # measured already (a re-run with --work)
        cmd = [sys.executable, __file__, "--budget", str(args.budget), "--marks", args.marks,
               "--nice", str(args.nice), "--one", str(work / "data" / ds), json.dumps(configs[name]), str(out)]
        subprocess.run(cmd, check=True, env=env)

    t = time.perf_counter()
    if not args.report:
        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(launch, jobs))
        print(f"\nall runs: {(time.perf_counter() - t) / 60:.1f} wall minutes", flush=True)
    report = []
    for ds in datasets:
        results = {}
        for name in configs:
            path = work / ds / name / "result.json"
            check_same_config(path.parent, resolved_config(configs[name]).to_dict())
            results[name] = json.loads(path.read_text())["rows"] if path.exists() else []
            add_missing_looks(work, ds, name, results[name], args.budget)
        report.append(print_tables(ds, results, args.budget, marks))
        if args.pictures:
            side_by_side(ds, work / "data" / ds, work, list(configs), marks,
                         args.pictures / f"quality-{ds}.jpg", latest=args.report)
    if args.sheet:
        sheet(datasets, work, list(configs), args.budget, args.sheet)
    (work / "report.md").write_text("\n".join(report) + "\n")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
