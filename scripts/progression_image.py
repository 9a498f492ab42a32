"""The README's progression picture: the top-left 4x4 faces of a run's fixed-noise grid at a few
epochs, side by side, each labelled.

    python scripts/progression_image.py runs/<job> --epochs 2,5,10,15 --out docs/demo-progression.png
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FACE, GUTTER = 96, 2  # the snapshot grid's tiles (model/imageio.grid_rgb)


def progression(run_dir: Path, epochs: list[int], side: int = 4, scale: float = 1.0,
                label: str = "epoch {epoch}") -> Image.Image:
    crop = side * (FACE + GUTTER) + GUTTER
    panel = int(crop * scale)
    label_h, pad = 24, 8
    canvas = Image.new("RGB", (len(epochs) * (panel + pad) - pad, panel + label_h), (20, 22, 28))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=15)
    for k, epoch in enumerate(epochs):
        with Image.open(run_dir / "snapshots" / f"epoch-{epoch:04d}.png") as grid:
            tile = grid.convert("RGB").crop((0, 0, crop, crop)).resize((panel, panel), Image.Resampling.LANCZOS)
        x = k * (panel + pad)
        draw.text((x + 4, 4), label.format(epoch=epoch), fill=(230, 230, 235), font=font)
        canvas.paste(tile, (x, label_h))
    return canvas


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--epochs", required=True, help="comma-separated snapshot epochs")
    ap.add_argument("--side", type=int, default=4, help="faces per side of each panel")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    epochs = [int(e) for e in args.epochs.split(",")]
    progression(args.run_dir, epochs, args.side).save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
