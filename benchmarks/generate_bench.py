"""GET /generate end to end vs the naive path, at the seed's model size (ngf=64), on this machine,
and where each request's time goes.

    python benchmarks/generate_bench.py [--repeat 15] [--device cpu|cuda]

naive:     the seed's generate step: G forward (eval, autograd on, NCHW) + torchvision
           save_image (Pillow's default PNG encoder), in-process, n=64
uncached:  a real uvicorn app answering GET /generate for a seed it has not seen, one client,
           n=64 and n=1, with request batching on (RENDER_BATCH_WINDOW_MS=4, the default) and
           off (0): two apps, requests interleaved between them
cached:    the same URL again (served from the app's image cache)

Each uncached answer's Server-Timing header says where the server's time went (wait: for a
render thread, a batch or a forward slot; noise; g: G's forward pass; encode: the PNG); "http"
is the rest of what the client measured (parsing, routing, the model lookup, sending, the
client). Medians over --repeat requests. The generator has the paper's random init (the cost of
a forward pass does not depend on the weights); the app renders with RENDER_BACKEND=auto.
Concurrent clients, where batching pays: benchmarks/batching_bench.py.
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import torch
import torchvision.utils as vutils

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.checkpoint import save_checkpoint  # noqa: E402
from model.config import TrainConfig  # noqa: E402
from model.networks import build_networks  # noqa: E402
from tests.service.stack import Stack  # noqa: E402

JOB = "20260101-000000-000000"
PARTS = ("wait", "noise", "g", "encode")


def median_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def server_timing(header: str) -> dict[str, float]:
    out = {}
    for part in header.split(","):
        name, *params = [p.strip() for p in part.split(";")]
        out[name] = next(float(p[4:]) for p in params if p.startswith("dur="))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    cfg = TrainConfig()
    g, d = build_networks(cfg.nz, cfg.ngf, cfg.ndf, seed=0)
    state = {"config": cfg.to_dict(), "epoch": 1, "batch": 0, "step": 1,
             "generator": g.state_dict(), "discriminator": d.state_dict()}
    g_naive = g.to(device).eval()

    def naive() -> bytes:
        fake = g_naive(torch.randn(64, cfg.nz, 1, 1, device=device))
        buf = io.BytesIO()
        vutils.save_image(fake, buf, format="png", normalize=True, value_range=(-1, 1))
        return buf.getvalue()

    naive_ms = median_ms(naive, args.repeat)
    seeds = iter(range(1_000_000, 4_000_000_000))
    rows: dict[tuple[int, str], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        apps = {}
        for name, window in (("on", "4"), ("off", "0")):
            stack = Stack(Path(tmp) / name, None, RENDER_BATCH_WINDOW_MS=window, REDIS_URL="", DEVICE=args.device)
            save_checkpoint(state, stack.runs / JOB / "checkpoints" / "epoch-0001.pt")
            apps[name] = (stack, httpx.Client(base_url=stack.start_app(), timeout=120))
        try:
            for n in (64, 1):
                for c in (c for _, c in apps.values()):  # warm: the model loaded, the threads started
                    c.get(f"/generate?seed={next(seeds)}&n={n}")
                for _ in range(args.repeat):
                    for name, (_, c) in apps.items():
                        t = time.perf_counter()
                        r = c.get(f"/generate?seed={next(seeds)}&n={n}")
                        total = (time.perf_counter() - t) * 1000
                        assert r.status_code == 200 and r.headers["x-cache"] == "miss", r.text
                        parts = server_timing(r.headers["server-timing"])
                        parts["http"] = total - sum(parts[p] for p in PARTS)
                        parts["total"] = total
                        rows.setdefault((n, name), []).append(parts)
            cached = apps["on"][1]
            cached.get("/generate?seed=7&n=64")
            cached_ms = median_ms(lambda: cached.get("/generate?seed=7&n=64"), max(args.repeat, 50))
        finally:
            for stack, c in apps.values():
                c.close()
                stack.stop()
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} ngf={cfg.ngf} "
          f"(RENDER_BACKEND=auto); medians of {args.repeat} requests, ms")
    print(f"naive (seed G forward + Pillow PNG), n=64  {naive_ms:8.1f}")
    print("| request | batching | total | wait | noise | g | encode | http |")
    print("|---|---|---|---|---|---|---|---|")
    med = {}
    for (n, name), parts in rows.items():
        m = {k: statistics.median(p[k] for p in parts) for k in ("total", *PARTS, "http")}
        med[(n, name)] = m
        print(f"| n={n} uncached | {name} | " + " | ".join(f"{m[k]:.1f}" for k in ("total", *PARTS, "http")) + " |")
    print(f"GET /generate?n=64, cached repeat   {cached_ms:8.2f} ms")
    for name in ("on", "off"):
        print(f"ratio (naive / uncached n=64, batching {name}): {naive_ms / med[(64, name)]['total']:.2f}x")


if __name__ == "__main__":
    main()
