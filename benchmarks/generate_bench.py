"""GET /generate end to end vs the naive path, at the seed's model size (ngf=64), on this machine.

    python benchmarks/generate_bench.py [--repeat 10] [--device cpu|cuda]

naive:     the seed's generate step: G forward (eval, autograd on) + torchvision save_image
           (Pillow's default PNG encoder), in-process
uncached:  a real uvicorn app answering GET /generate?n=64 for a seed it has not seen
cached:    the same URL again (served from the app's image cache)

The generator has the paper's random init (training it at this size needs a GPU); the cost of
a forward pass does not depend on the weights.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
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

JOB = "20260101-000000-000000"


def median_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for i in range(repeat):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    cfg = TrainConfig()
    g, d = build_networks(cfg.nz, cfg.ngf, cfg.ndf, seed=0)

    g_naive = g.to(device).eval()

    def naive(i: int = 0) -> bytes:
        noise = torch.randn(64, cfg.nz, 1, 1, device=device)
        fake = g_naive(noise)
        buf = io.BytesIO()
        vutils.save_image(fake, buf, format="png", normalize=True, value_range=(-1, 1))
        return buf.getvalue()

    naive_ms = median_ms(lambda i=0: naive(i), args.repeat)

    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        save_checkpoint({"config": cfg.to_dict(), "epoch": 1, "batch": 0, "step": 1,
                         "generator": g.cpu().state_dict(), "discriminator": d.state_dict()},
                        runs / JOB / "checkpoints" / "epoch-0001.pt")
        port = 8700 + os.getpid() % 200
        env = {**os.environ, "RUNS_DIR": str(runs), "DATA_ROOT": tmp, "DEVICE": args.device,
               "REDIS_URL": "", "API_TOKEN": "x"}
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port),
                                 "--log-level", "warning"], env=env, cwd=Path(__file__).resolve().parents[1])
        try:
            url = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=url, timeout=120) as c:
                for _ in range(300):
                    try:
                        if c.get("/healthz").status_code == 200:
                            break
                    except httpx.HTTPError:
                        time.sleep(0.1)
                seeds = iter(range(1_000_000, 2_000_000))

                def uncached(i: int = 0) -> None:
                    r = c.get(f"/generate?seed={next(seeds)}&n=64")
                    assert r.status_code == 200, r.text

                def cached(i: int = 0) -> None:
                    assert c.get("/generate?seed=7&n=64").status_code == 200

                uncached_ms = median_ms(uncached, args.repeat)
                cached_ms = median_ms(cached, max(args.repeat, 50))
        finally:
            proc.terminate()
            proc.wait(10)
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} ngf={cfg.ngf} n=64")
    print(f"naive (seed G forward + Pillow PNG)  {naive_ms:8.1f} ms")
    print(f"GET /generate, uncached              {uncached_ms:8.1f} ms")
    print(f"GET /generate, cached repeat         {cached_ms:8.2f} ms")
    print(f"ratio (naive / uncached): {naive_ms / uncached_ms:.2f}x")


if __name__ == "__main__":
    main()
