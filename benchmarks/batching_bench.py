"""Request batching: 16 concurrent clients asking GET /generate?n=1 (a new seed each time),
with RENDER_BATCH_WINDOW_MS on and at 0, at the seed's model size (ngf=64), on this machine.

    python benchmarks/batching_bench.py [--clients 16] [--seconds 8] [--rounds 3] [--window-ms 4]

Two real uvicorn apps (embedded mode) serve the same checkpoint (the paper's random init: the
cost of a forward pass does not depend on the weights); rounds alternate between them (on, off,
on, off, ...) so that both see the same machine. Prints faces/s and p50/p95 latency per round,
the medians, the ratio (on / off), and checks that both apps give identical bytes for the same
seeds. Exit code 1 on any answer but 200.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.checkpoint import save_checkpoint  # noqa: E402
from model.config import TrainConfig  # noqa: E402
from model.networks import build_networks  # noqa: E402
from tests.service.stack import Stack  # noqa: E402

JOB = "20260101-000000-000000"


async def round_of(url: str, clients: int, seconds: float, seeds) -> tuple[float, list[float], int, list[int]]:
    """(faces per second, latencies, answers that were not 200, faces in each answer's forward pass)
    for `clients` closed-loop clients."""
    latencies: list[float] = []
    passes: list[int] = []
    bad = 0

    async def client(c: httpx.AsyncClient, deadline: float) -> None:
        nonlocal bad
        while time.monotonic() < deadline:
            t = time.perf_counter()
            r = await c.get(f"/generate?seed={next(seeds)}&n=1")
            latencies.append(time.perf_counter() - t)
            bad += r.status_code != 200
            timing = r.headers.get("server-timing", "")
            if 'desc="' in timing:
                passes.append(int(timing.split('desc="')[1].split()[0]))

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as c:
        await asyncio.gather(*[c.get(f"/generate?seed={next(seeds)}&n=1") for _ in range(clients)])  # warm
        start = time.monotonic()
        await asyncio.gather(*[client(c, start + seconds) for _ in range(clients)])
        elapsed = time.monotonic() - start
    return len(latencies) / elapsed, latencies, bad, passes


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--window-ms", type=float, default=4.0)
    ap.add_argument("--ngf", type=int, default=64, help="the generator's width (64: the seed's)")
    args = ap.parse_args()
    cfg = TrainConfig(ngf=args.ngf, ndf=args.ngf)
    g, d = build_networks(cfg.nz, cfg.ngf, cfg.ndf, seed=0)
    state = {"config": cfg.to_dict(), "epoch": 1, "batch": 0, "step": 1,
             "generator": g.state_dict(), "discriminator": d.state_dict()}
    seeds = iter(range(1_000_000, 4_000_000_000))
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        stacks = {}
        for name, window in (("on", args.window_ms), ("off", 0.0)):
            stack = Stack(Path(tmp) / name, None, RENDER_BATCH_WINDOW_MS=str(window), REDIS_URL="")
            save_checkpoint(state, stack.runs / JOB / "checkpoints" / "epoch-0001.pt")
            stacks[name] = (stack, stack.start_app())
        try:
            same = [httpx.get(f"{url}/generate?seed=5&n=3", timeout=60).content for _, url in stacks.values()]
            if same[0] != same[1]:
                print("the two apps answer different bytes for the same query")
                bad += 1
            results: dict[str, list[tuple[float, list[float]]]] = {"on": [], "off": []}
            for r in range(args.rounds):
                for name in ("on", "off"):
                    rate, lat, errors, passes = asyncio.run(
                        round_of(stacks[name][1], args.clients, args.seconds, seeds))
                    bad += errors
                    results[name].append((rate, lat))
                    print(f"round {r + 1} batching {name:3}: {rate:7.1f} faces/s  p50 {pct(lat, .5):6.1f} ms"
                          f"  p95 {pct(lat, .95):6.1f} ms  ({len(lat)} requests, a request's pass held "
                          f"{statistics.median(passes) if passes else 0:.0f} faces (median))", flush=True)
        finally:
            for stack, _ in stacks.values():
                stack.stop()
    on = statistics.median(rate for rate, _ in results["on"])
    off = statistics.median(rate for rate, _ in results["off"])
    print(f"torch={torch.__version__} threads={torch.get_num_threads()} ngf={cfg.ngf} clients={args.clients} "
          f"n=1 window={args.window_ms} ms")
    print(f"median faces/s: batching on {on:.1f}, off {off:.1f}; ratio (on / off): {on / off:.2f}x")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
