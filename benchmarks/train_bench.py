"""Training throughput: the seed's way vs model.train, same images, same config, one process.

Baseline (what the seed write-up does): torchvision ImageFolder + Resize/CenterCrop/ToTensor/
Normalize, DataLoader(num_workers=4, shuffle, drop_last) decoding every image every epoch,
D ending in Sigmoid + BCELoss, fp32, the fake batch generated with autograd on and detached.
Ours: model.train.train() on the same folder (decode-once cache, on-device batches, logits).

    python benchmarks/train_bench.py            # CPU, ngf=ndf=32, batch 64, 512 images
    python benchmarks/train_bench.py --full     # the seed's config (ngf=ndf=64, batch 256)

Runs baseline and ours in interleaved rounds of 3 epochs and prints images/s of each (median
of the epochs after each round's first) and the ratio.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.config import TrainConfig  # noqa: E402
from model.networks import Discriminator, Generator  # noqa: E402
from model.runtime import resolve_device  # noqa: E402
from model.train import train  # noqa: E402


def make_images(folder: Path, count: int) -> Path:
    """`count` synthetic faces as 96x96 JPEGs in ImageFolder layout (the real set is JPEG)."""
    from model.synth import draw_face

    sub = folder / "faces"
    sub.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        p = sub / f"{i:05d}.jpg"
        if not p.exists():
            draw_face(0, i).save(p, quality=95)
    return folder


def seed_baseline(data: Path, cfg: TrainConfig, device: torch.device, epochs: int,
                  workers: int) -> list[float]:
    """The seed's loop; returns seconds per epoch."""
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder

    tf = T.Compose([T.Resize(cfg.image_size), T.CenterCrop(cfg.image_size), T.ToTensor(),
                    T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    loader = torch.utils.data.DataLoader(ImageFolder(str(data), transform=tf), batch_size=cfg.batch_size,
                                         shuffle=True, num_workers=workers, drop_last=True,
                                         persistent_workers=False)
    netg = Generator(cfg.nz, cfg.ngf).to(device)
    netd = nn.Sequential(Discriminator(cfg.ndf), nn.Sigmoid()).to(device)
    opt_g = torch.optim.Adam(netg.parameters(), cfg.lr, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(netd.parameters(), cfg.lr, betas=(cfg.beta1, cfg.beta2))
    criterion = nn.BCELoss()
    true_labels = torch.ones(cfg.batch_size, device=device)
    fake_labels = torch.zeros(cfg.batch_size, device=device)
    fix_noises = torch.randn(cfg.grid_images, cfg.nz, 1, 1, device=device)
    noises = torch.randn(cfg.batch_size, cfg.nz, 1, 1, device=device)
    times = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        for ii, (img, _) in enumerate(loader):
            real_img = img.to(device)
            if ii % cfg.d_every == 0:
                opt_d.zero_grad()
                error_d_real = criterion(netd(real_img), true_labels)
                error_d_real.backward()
                noises.data.copy_(torch.randn(cfg.batch_size, cfg.nz, 1, 1, device=device))
                fake_img = netg(noises).detach()
                error_d_fake = criterion(netd(fake_img), fake_labels)
                error_d_fake.backward()
                opt_d.step()
            if ii % cfg.g_every == 0:
                opt_g.zero_grad()
                noises.data.copy_(torch.randn(cfg.batch_size, cfg.nz, 1, 1, device=device))
                error_g = criterion(netd(netg(noises)), true_labels)
                error_g.backward()
                opt_g.step()
        if epoch + 1 == epochs:  # the seed renders its fixed-noise grid at snapshot epochs
            import torchvision.utils as vutils
            with torch.no_grad():
                vutils.save_image(netg(fix_noises), data.parent / "baseline-grid.png",
                                  normalize=True, value_range=(-1, 1))
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def ours(data: Path, cfg: TrainConfig, device: torch.device, work: Path, name: str) -> tuple[list[float], float]:
    """model.train (a cold dataset cache the first time); returns (seconds per epoch, wall seconds)."""
    t0 = time.perf_counter()
    train(cfg, work / name, data_dir=data, device=device, cache_dir=work / "cache")
    total = time.perf_counter() - t0
    rows = [json.loads(x) for x in (work / name / "metrics.jsonl").read_text().splitlines()]
    return [r["epoch_seconds"] for r in rows if r.get("kind") == "epoch"], total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="the seed's config: ngf=ndf=64, batch 256")
    ap.add_argument("--images", type=int, help="dataset size (default 512, --full 2048)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per round (the first is warm-up)")
    ap.add_argument("--rounds", type=int, default=3, help="baseline/ours rounds, interleaved")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=4, help="baseline DataLoader workers (the seed: 4)")
    ap.add_argument("--data", type=Path, help="use this image folder instead of synthetic faces")
    args = ap.parse_args()
    device = resolve_device(args.device)
    size = dict(ngf=64, ndf=64, batch_size=256) if args.full else dict(ngf=32, ndf=32, batch_size=64)
    cfg = TrainConfig(epochs=args.epochs, snapshot_epochs=(args.epochs,), swd_images=0,
                      log_every=10_000, **size)
    torch.manual_seed(0)
    base_steady, ours_steady, first_call = [], [], None
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = args.data or make_images(work / "data", args.images or (2048 if args.full else 512))
        n = sum(1 for p in data.rglob("*") if p.is_file())
        print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} images={n} "
              f"ngf={cfg.ngf} ndf={cfg.ndf} batch={cfg.batch_size} epochs={cfg.epochs} rounds={args.rounds}")
        # Interleaved rounds, medians of the epochs after each round's first: a shared machine
        # drifts, and this keeps the drift out of the ratio.
        for r in range(args.rounds):
            base = seed_baseline(data, cfg, device, args.epochs, args.workers)
            mine, total = ours(data, cfg, device, work, f"run{r}")
            first_call = first_call or total
            base_steady += base[1:]
            ours_steady += mine[1:]
            print(f"round {r + 1}: baseline s/epoch {', '.join(f'{t:.2f}' for t in base)} | "
                  f"ours {', '.join(f'{t:.2f}' for t in mine)}")
    per_epoch = (n // cfg.batch_size) * cfg.batch_size
    b_ips = per_epoch / statistics.median(base_steady)
    o_ips = per_epoch / statistics.median(ours_steady)
    print(f"baseline  {b_ips:8.1f} images/s (median epoch {statistics.median(base_steady):.2f} s)")
    print(f"ours      {o_ips:8.1f} images/s (median epoch {statistics.median(ours_steady):.2f} s; "
          f"first call incl. decoding the folder {first_call:.2f} s)")
    print(f"ratio (ours / baseline): {o_ips / b_ips:.2f}x")


if __name__ == "__main__":
    main()
