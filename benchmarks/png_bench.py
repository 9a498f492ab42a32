"""PNG encoding of a 786x786 generated grid: Pillow's default vs model.imageio.encode_png.

    python benchmarks/png_bench.py [--repeat 20]

The grid holds 64 synthetic faces (model.synth), since how well faces compress, not noise, is
what matters. Prints the median ms per image, the sizes and the speed ratio, and checks that
both files decode to identical pixels.
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.imageio import encode_pil, encode_png, fast_png_available, grid_rgb  # noqa: E402


def sample_grid() -> np.ndarray:
    """64 synthetic faces laid out as the service lays out a generated grid."""
    import torch

    from model.synth import draw_face
    faces = torch.stack([torch.from_numpy(np.asarray(draw_face(0, i), dtype=np.float32)).permute(2, 0, 1)
                         for i in range(64)]) / 127.5 - 1
    return grid_rgb(faces)


def timed(fn, repeat: int) -> tuple[float, bytes]:
    out = fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    rgb = sample_grid()
    base_ms, base = timed(lambda: encode_pil(rgb, "png"), args.repeat)
    ours_ms, ours = timed(lambda: encode_png(rgb), args.repeat)
    for data in (base, ours):
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), rgb)
    print(f"grid {rgb.shape[1]}x{rgb.shape[0]}; fast encoder (isal) installed: {fast_png_available()}")
    print(f"Pillow default  {base_ms:7.2f} ms  {len(base):9d} bytes")
    print(f"encode_png      {ours_ms:7.2f} ms  {len(ours):9d} bytes")
    print(f"ratio (Pillow / ours): {base_ms / ours_ms:.1f}x faster, size {len(ours) / len(base):.2f}x")


if __name__ == "__main__":
    main()
