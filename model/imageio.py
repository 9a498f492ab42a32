"""Turning generator output into image files: grids, PNG/JPEG/WebP/GIF bytes.

PNG is what the service sends most. Pillow's default encoder (zlib level 6 with adaptive
filters) takes ~150 ms for a 786x786 grid on one core; with the optional `isal` package we
write the PNG ourselves: one "Sub" filter pass in numpy and ISA-L's level-1 deflate, over 10x
faster for a file a few percent larger (benchmarks/png_bench.py). Without `isal`, Pillow.
"""
from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from torchvision.utils import make_grid

try:  # optional fast deflate
    from isal import isal_zlib as _isal_zlib
except ImportError:  # pragma: no cover - exercised by the fallback test through monkeypatching
    _isal_zlib = None

FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float images -> uint8 with the rounding of torchvision's save_image."""
    return images.add(1).mul_(127.5).add_(0.5).clamp_(0, 255).to(torch.uint8)


def grid_rgb(images: torch.Tensor, nrow: int = 8, padding: int = 2) -> np.ndarray:
    """N x 3 x H x W images in [-1, 1] -> one H' x W' x 3 uint8 grid (black 2 px gutters, as
    `save_image(normalize=True, value_range=(-1, 1))` would draw it)."""
    grid = make_grid(images.detach().float().cpu(), nrow=nrow, padding=padding, pad_value=-1.0)
    return to_uint8(grid).permute(1, 2, 0).contiguous().numpy()


def frames_rgb(images: torch.Tensor) -> list[np.ndarray]:
    u8 = to_uint8(images.detach().float().cpu()).permute(0, 2, 3, 1).contiguous().numpy()
    return list(u8)


def fast_png_available() -> bool:
    return _isal_zlib is not None


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _text_chunk(key: str, value: str) -> bytes:
    """A tEXt chunk, or an uncompressed iTXt one for text outside Latin-1 (as Pillow writes them)."""
    try:
        return _chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1"))
    except UnicodeEncodeError:
        return _chunk(b"iTXt", key.encode("latin-1") + b"\0\0\0\0\0" + value.encode("utf-8"))


def _png_isal(rgb: np.ndarray, text: Mapping[str, str] | None = None) -> bytes:
    h, w, c = rgb.shape
    rows = rgb.reshape(h, w * c)
    filtered = np.empty((h, w * c + 1), dtype=np.uint8)
    filtered[:, 0] = 1  # PNG filter type 1 (Sub): each byte minus the byte one pixel to the left
    filtered[:, 1:c + 1] = rows[:, :c]
    np.subtract(rows[:, c:], rows[:, :-c], out=filtered[:, c + 1:])
    colour_type = {3: 2, 4: 6, 1: 0}[c]
    ihdr = struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)
    idat = _isal_zlib.compress(filtered.tobytes(), 1)
    texts = b"".join(_text_chunk(k, v) for k, v in (text or {}).items())
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + texts + _chunk(b"IDAT", idat)
            + _chunk(b"IEND", b""))


def encode_pil(rgb: np.ndarray, fmt: str = "png", **options) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt.upper(), **options)
    return buf.getvalue()


def encode_png(rgb: np.ndarray, fast: bool = True, text: Mapping[str, str] | None = None) -> bytes:
    """H x W x 3 uint8 -> PNG bytes (the fast encoder when installed and `fast`, else Pillow),
    with `text` as text chunks before the image data, in its order (model/provenance.py)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if fast and _isal_zlib is not None:
        return _png_isal(rgb, text)
    if not text:
        return encode_pil(rgb, "png")
    info = PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    return encode_pil(rgb, "png", pnginfo=info)


def encode_image(rgb: np.ndarray, fmt: str = "png", text: Mapping[str, str] | None = None) -> bytes:
    """PNG, JPEG (quality 92) or WebP (quality 90) bytes of one image; `text` (provenance) goes
    into a PNG's text chunks (JPEG and WebP files carry none)."""
    if fmt == "png":
        return encode_png(rgb, text=text)
    if fmt == "jpeg":
        return encode_pil(rgb, "jpeg", quality=92)
    if fmt == "webp":
        return encode_pil(rgb, "webp", quality=90, method=4)
    raise ValueError(f"unknown image format {fmt!r}; use one of {', '.join(FORMATS)}")


def encode_gif(frames: Sequence[np.ndarray], frame_ms: int = 120) -> bytes:
    """Animated GIF that plays the frames forward then back, looping forever."""
    seq = list(frames) + list(frames[-2:0:-1])
    pil = [Image.fromarray(f).convert("P", palette=Image.Palette.ADAPTIVE, colors=255) for f in seq]
    buf = io.BytesIO()
    pil[0].save(buf, format="GIF", save_all=True, append_images=pil[1:], duration=frame_ms,
                loop=0, disposal=2)
    return buf.getvalue()
