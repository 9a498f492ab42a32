"""Load on /generate while a training job runs: N concurrent clients for D seconds.

    python benchmarks/load_bench.py                      # 32 clients, 60 s (make load)
    python benchmarks/load_bench.py --clients 8 --duration 5

Starts its own worker (at nice 10) and app (embedded mode, no Redis) on 127.0.0.1, queues a
small training job, waits for its first checkpoint, then runs the clients (mixed seeds and n; a small seed
pool so that repeats happen) and samples the app's memory. Prints status counts, p50/p99
latency (all, cache hits, cache misses, and a separate light client repeating one cached
request), throughput and the app's RSS. Exit code 1 on any error
answer (anything but 200/304) or an app whose memory grew past --max-rss-mb.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.service.stack import AUTH, Stack, wait_for  # noqa: E402

TRAINING_JOB = {"dataset": "synthetic", "synthetic_images": 512, "ngf": 16, "ndf": 16, "batch_size": 32,
                "g_every": 1, "epochs": 1000, "snapshot_epochs": [1], "swd_images": 0, "log_every": 8}


PROBE = """
import json, sys, time, httpx
url, seconds = sys.argv[1], float(sys.argv[2])
out = []
with httpx.Client(timeout=60) as c:
    c.get(url)  # warm: from now on it is a cache hit
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.perf_counter()
        c.get(url)
        out.append(time.perf_counter() - t)
        time.sleep(0.1)
print(json.dumps(out))
"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def client_loop(url: str, deadline: float, rng: random.Random, out: list) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        while time.monotonic() < deadline:
            n = rng.choice([1, 4, 16, 64])
            seed = rng.randrange(64)  # a small pool: repeats are served from the cache
            t = time.perf_counter()
            try:
                r = await c.get(f"/generate?seed={seed}&n={n}")
                out.append((r.status_code, time.perf_counter() - t, r.headers.get("x-cache", "")))
            except httpx.HTTPError as exc:
                out.append((type(exc).__name__, time.perf_counter() - t, ""))


async def run_clients(url: str, clients: int, duration: float, seed: int) -> list:
    out: list = []
    deadline = time.monotonic() + duration
    await asyncio.gather(*(client_loop(url, deadline, random.Random(seed + i), out) for i in range(clients)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--max-rss-mb", type=float, default=3000)
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp), redis_url=None, GENERATE_QUEUE="64")
        try:
            # On a CPU-only box the trainer yields to the app (nice 10); on a GPU box it hardly
            # competes for the CPU at all.
            stack.start_worker(nice=10)
            url = stack.start_app()
            app_pid = stack.apps[0][0].pid
            job = httpx.post(f"{url}/train", json=TRAINING_JOB, headers=AUTH).json()["job_id"]
            wait_for(lambda: httpx.get(f"{url}/readyz").status_code == 200, 300, "a first checkpoint")
            rss = [rss_mb(app_pid)]
            stop = asyncio.Event()

            async def sample():
                while not stop.is_set():
                    rss.append(rss_mb(app_pid))
                    await asyncio.sleep(1)

            async def go():
                sampler = asyncio.create_task(sample())
                results = await run_clients(url, args.clients, args.duration, 0)
                stop.set()
                await sampler
                return results

            # A separate, light client asking for one cached image 10 times a second: what a
            # repeat costs while the server is saturated, without the load generator's own queue.
            probe = subprocess.Popen([sys.executable, "-c", PROBE, f"{url}/generate?seed=4242&n=64",
                                      str(args.duration)], stdout=subprocess.PIPE, text=True)
            t0 = time.perf_counter()
            results = asyncio.run(go())
            elapsed = time.perf_counter() - t0
            probe_ms = json.loads(probe.communicate(timeout=120)[0])
            state = httpx.get(f"{url}/jobs/{job}").json()
        finally:
            stack.stop()
    codes: dict = {}
    for code, _, _ in results:
        codes[code] = codes.get(code, 0) + 1
    ok = [lat for code, lat, _ in results if code == 200]
    hits = [lat for code, lat, cache in results if code == 200 and cache == "hit"]
    misses = [lat for code, lat, cache in results if code == 200 and cache == "miss"]
    errors = sum(v for k, v in codes.items() if k not in (200, 304))
    ms = lambda v: f"{v * 1000:.1f} ms"  # noqa: E731
    print(f"clients={args.clients} duration={args.duration:.0f}s requests={len(results)} "
          f"throughput={len(results) / elapsed:.1f} req/s")
    print(f"status counts: {json.dumps({str(k): v for k, v in sorted(codes.items(), key=str)})}  errors={errors}")
    print(f"latency all:    p50 {ms(pct(ok, .5))}  p99 {ms(pct(ok, .99))}")
    print(f"latency hits:   p50 {ms(pct(hits, .5))}  p99 {ms(pct(hits, .99))}  ({len(hits)} requests)")
    print(f"latency misses: p50 {ms(pct(misses, .5))}  p99 {ms(pct(misses, .99))}  ({len(misses)} requests)")
    print(f"cached repeat, separate probe client: p50 {ms(pct(probe_ms, .5))}  p99 {ms(pct(probe_ms, .99))}"
          f"  ({len(probe_ms)} requests)")
    print(f"app RSS: start {rss[0]:.0f} MB, max {max(rss):.0f} MB, end {rss[-1]:.0f} MB")
    print(f"training job meanwhile: {state['state']}, epoch {state['epoch']}, step {state['step']}")
    if args.json:
        args.json.write_text(json.dumps({
            "requests": len(results), "errors": errors, "status_counts": {str(k): v for k, v in codes.items()},
            "rss_mb": {"start": rss[0], "max": max(rss), "end": rss[-1]}, "hits": len(hits),
            "misses": len(misses), "training": {k: state[k] for k in ("state", "epoch", "step")}}))
    if errors or max(rss) > args.max_rss_mb:
        print("FAIL: errors or memory over the bound", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
