"""What each of G's upsampling options costs a training step, and what computing a resize + conv as
the identical sub-pixel convolution (x3) or tied transposed conv (x2) saves, on this CPU, one
thread, CPU time (time.process_time: other processes on the machine do not add to it),
interleaved rounds, medians.

    python benchmarks/upsample_bench.py                 # the `fast` preset's widths, batch 32
    python benchmarks/upsample_bench.py --ngf 64 --ndf 64 --batch 64 --rounds 5

Prints, per option, G forward + D forward + backward of both (a training step's networks, without
the optimiser), and for each resize layer of the `resize` G the layer's forward + backward
computed as `Sequential(Upsample, Conv2d)` (how torch runs it as written) against
model.networks._ResizeConv (the form the project runs: sub-pixel for x3, a tied 4x4 stride-2
transposed conv for x2), with their ratio.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.config import UPSAMPLES, TrainConfig  # noqa: E402
from model.networks import _ResizeConv, networks_for  # noqa: E402


def cpu_ms(fn) -> float:
    start = time.process_time()
    fn()
    return (time.process_time() - start) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ngf", type=int, default=32)
    ap.add_argument("--ndf", type=int, default=16)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, 1 thread, ngf {args.ngf}, ndf {args.ndf}, batch {args.batch}, "
          f"{args.rounds} interleaved rounds, median CPU ms")

    z = torch.randn(args.batch, 100, 1, 1)
    nets = {up: networks_for(TrainConfig(ngf=args.ngf, ndf=args.ndf, upsample=up)) for up in UPSAMPLES}

    def step(up: str) -> None:
        g, d = nets[up]
        d(g(z)).mean().backward()

    layers = {}  # each resize layer of the resize G, as written and as run, at its input's size
    g = nets["resize"][0]
    resizes = [m for m in g.modules() if isinstance(m, _ResizeConv)]
    sides = {}
    hooks = [m.register_forward_pre_hook(lambda m, inp: sides.__setitem__(m, inp[0].shape[-1])) for m in resizes]
    with torch.no_grad():
        g(z[:1])
    for h in hooks:
        h.remove()
    for m in resizes:
        plain = nn.Sequential(nn.Upsample(scale_factor=m.scale), nn.Conv2d(m[1].in_channels, m[1].out_channels,
                                                                             3, 1, 1, bias=False))
        plain.load_state_dict(m.state_dict())
        x = torch.randn(args.batch, m[1].in_channels, sides[m], sides[m], requires_grad=True)
        layers[f"x{m.scale} {m[1].in_channels}->{m[1].out_channels} from {sides[m]} px"] = (plain, m, x)

    times: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for up in UPSAMPLES:
            times.setdefault(f"step {up}", []).append(cpu_ms(lambda up=up: step(up)))
        for name, (plain, ours, x) in layers.items():
            times.setdefault(f"{name} as written", []).append(cpu_ms(lambda f=plain, x=x: f(x).sum().backward()))
            times.setdefault(f"{name} as run", []).append(cpu_ms(lambda f=ours, x=x: f(x).sum().backward()))
    med = {k: statistics.median(v) for k, v in times.items()}

    base = med["step deconv"]
    print("\nG + D forward and backward, per upsample option:")
    for up in UPSAMPLES:
        print(f"  {up:12s} {med[f'step {up}']:8.1f} ms  {med[f'step {up}'] / base:5.2f}x deconv")
    print("\nthe resize G's layers, forward + backward:")
    for name in layers:
        written, ours = med[f"{name} as written"], med[f"{name} as run"]
        print(f"  {name:34s} as written {written:7.1f} ms, as run {ours:7.1f} ms: {written / ours:5.2f}x faster")


if __name__ == "__main__":
    main()
