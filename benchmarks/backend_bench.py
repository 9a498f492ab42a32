"""Which backend renders the served generator fastest here: G's forward pass alone, per face.

    python benchmarks/backend_bench.py [--rounds 7] [--ngf 64] [--device cpu|cuda]

Backends, on the same seed-sized G (the paper's init: the cost does not depend on the weights):
  eager           torch, NCHW
  channels_last   torch, NHWC (what the app uses today)
  compile         torch.compile of the channels_last net (skipped where it fails)
  onnxruntime     the generator as the app serves it on a CPU (model/backends.OnnxGenerator:
                  exported to ONNX, run by onnxruntime with torch's thread count, no spinning)
  (CUDA:) bf16 / fp16 autocast of channels_last
Each round times every backend at batch 1, 16 and 64 in turn (interleaved, so a machine that
drifts drifts for all of them) and the table shows the median ms per face over the rounds, and
the largest difference of each backend's images from eager's (the tolerance between backends).
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.networks import build_networks  # noqa: E402

BATCHES = (1, 16, 64)


def torch_backend(g: torch.nn.Module, device: torch.device, layout, dtype=None) -> Callable:
    net = copy.deepcopy(g).to(device, memory_format=layout).eval()

    @torch.inference_mode()
    def run(z: torch.Tensor) -> np.ndarray:
        with torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            out = net(z.to(device))
        return out.float().cpu().numpy()
    return run


def compiled_backend(g: torch.nn.Module, device: torch.device) -> Callable:
    net = torch.compile(copy.deepcopy(g).to(device, memory_format=torch.channels_last).eval())

    @torch.inference_mode()
    def run(z: torch.Tensor) -> np.ndarray:
        return net(z.to(device)).float().cpu().numpy()
    return run


def onnx_backend(g: torch.nn.Module) -> Callable:
    from model.backends import OnnxGenerator
    served = OnnxGenerator(copy.deepcopy(g))  # as the app serves it (RENDER_BACKEND=auto on a CPU)
    return lambda z: served(z).numpy()


def measure(device: torch.device, ngf: int, rounds: int, compile: bool = True) -> dict[str, dict]:
    """{backend: {"ms_per_face": {batch: median ms}, "max_diff": largest |difference| from eager}}."""
    g, _ = build_networks(100, ngf, 8, seed=0)
    g.eval()
    backends: dict[str, Callable] = {
        "eager": torch_backend(g, device, torch.contiguous_format),
        "channels_last": torch_backend(g, device, torch.channels_last),
    }
    if device.type == "cuda":
        backends["bf16"] = torch_backend(g, device, torch.channels_last, torch.bfloat16)
        backends["fp16"] = torch_backend(g, device, torch.channels_last, torch.float16)
    else:
        backends["onnxruntime"] = onnx_backend(g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fn = compiled_backend(g, device) if compile else None
            for b in BATCHES if fn else ():
                fn(torch.randn(b, 100, 1, 1))  # compile (and recompile per batch) outside the timing
            if fn:
                backends["compile"] = fn
        except Exception as exc:
            print(f"compile: skipped ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
    gen = torch.Generator().manual_seed(0)
    noise = {b: torch.randn(b, 100, 1, 1, generator=gen) for b in BATCHES}
    reference = {b: backends["eager"](noise[b]) for b in BATCHES}
    error = {name: max(float(np.abs(fn(noise[b]) - reference[b]).max()) for b in BATCHES)
             for name, fn in backends.items()}
    times: dict[tuple[str, int], list[float]] = {}
    for _ in range(rounds):
        for b in BATCHES:
            for name, fn in backends.items():
                fn(noise[b])  # warm for this batch size
                t = time.perf_counter()
                fn(noise[b])
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times.setdefault((name, b), []).append((time.perf_counter() - t) / b * 1000)
    return {name: {"ms_per_face": {b: round(statistics.median(times[(name, b)]), 3) for b in BATCHES},
                   "max_diff": error[name]} for name in backends}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    table = measure(device, args.ngf, args.rounds)
    print(f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads, ngf {args.ngf}, "
          f"{args.rounds} interleaved rounds: median ms per face (max |difference| from eager)")
    print("| backend | " + " | ".join(f"batch {b}" for b in BATCHES) + " | max diff |")
    print("|---|" + "---|" * (len(BATCHES) + 1))
    for name, row in table.items():
        cells = [f"{row['ms_per_face'][b]:.2f}" for b in BATCHES]
        print(f"| {name} | " + " | ".join(cells) + f" | {row['max_diff']:.1e} |")


if __name__ == "__main__":
    main()
