"""The training images: found once, decoded once, kept as one memory-mapped uint8 array.

The seed decodes every JPEG again in every epoch. Here a folder is decoded in parallel into
`<cache>/<fingerprint>.u8` (N x 3 x S x S uint8, about 1.4 GB for 51,223 faces), keyed by a
fingerprint of the file list, sizes, mtimes and the transform, and every later epoch, job and
resume maps that file instead of reading any image.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

from model.fsutil import atomic_write_bytes, fsync_dir

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
# Part of the cache key: bump when decode_image changes what it produces.
TRANSFORM_VERSION = "rgb-on-white/resize-short-side-bilinear-antialias/center-crop/v1"
# Images smaller than this on either side are skipped: upscaled, they would only teach blur.
MIN_SIDE = 8
# Pillow refuses images over ~179 Mpx by default as decompression bombs; we keep that guard.
Image.MAX_IMAGE_PIXELS = 89_478_485


class DataError(ValueError):
    """The data folder cannot be trained on; the message names the folder and the reason."""


class BadImage(Exception):
    """One file is not a usable image; the message is the short reason recorded in the stats."""


@dataclass
class ImageDataset:
    """Decoded images plus what was skipped on the way."""
    images: np.ndarray  # uint8, N x 3 x S x S, memory-mapped (never written)
    root: Path
    fingerprint: str
    files_found: int
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    skipped_examples: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    cache_path: Path | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def summary(self) -> dict:
        return {"images": len(self), "files_found": self.files_found,
                "skipped": sum(self.skipped.values()), "skipped_by_reason": dict(self.skipped),
                "skipped_examples": [list(x) for x in self.skipped_examples],
                "fingerprint": self.fingerprint}


def default_cache_dir() -> Path:
    env = os.environ.get("DCGAN_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dcgan-faces"


def find_images(root: Path) -> list[Path]:
    """Image files under `root` (ImageFolder layout or flat), sorted, hidden entries skipped."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"data folder {root} does not exist")
    if not root.is_dir():
        raise DataError(f"data folder {root} is not a folder")
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(Path(dirpath) / name)
    found.sort()
    return found


def fingerprint(root: Path, files: list[Path], image_size: int) -> str:
    """Changes when any file is added, removed, resized or touched, or the transform changes."""
    h = hashlib.sha256(f"{TRANSFORM_VERSION}|{image_size}|".encode())
    for p in files:
        try:
            st = p.stat()
            h.update(f"{p.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p.relative_to(root)}|missing\n".encode())
    return h.hexdigest()[:32]


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparency is composited onto white."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        if a.size and a.max() > 255:
            a = a / 257.0
        im = Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8), "L")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    return im.convert("RGB")


def decode_image(path: Path, size: int) -> np.ndarray:
    """One file -> uint8 3 x size x size: shorter side resized to `size`, centre-cropped (the
    seed's Resize + CenterCrop). Raises BadImage with a short reason."""
    try:
        if os.path.getsize(path) == 0:
            raise BadImage("empty file")
        with Image.open(path) as im:
            im.draft(None, (size, size))  # JPEG: let libjpeg decode big photos at a reduced scale
            im.load()
            if min(im.size) < MIN_SIDE:
                raise BadImage(f"smaller than {MIN_SIDE}px")
            im = _to_rgb(im)
            w, h = im.size
            side = min(w, h)
            left, top = (w - side) / 2, (h - side) / 2
            if (w, h) != (size, size):
                im = im.resize((size, size), Image.Resampling.BILINEAR,
                               box=(left, top, left + side, top + side))
            return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)
    except BadImage:
        raise
    except UnidentifiedImageError:
        raise BadImage("not an image") from None
    except Image.DecompressionBombError:
        raise BadImage("too many pixels") from None
    except OSError as exc:
        msg = str(exc).lower()
        raise BadImage("truncated" if "truncated" in msg else "unreadable") from None
    except (ValueError, SyntaxError, MemoryError, Image.DecompressionBombWarning):
        raise BadImage("unreadable") from None


def _cache_files(cache_dir: Path, fp: str) -> tuple[Path, Path]:
    return cache_dir / f"{fp}.u8", cache_dir / f"{fp}.json"


def _open_cached(cache_dir: Path, fp: str, image_size: int) -> tuple[np.ndarray, dict] | None:
    data_path, meta_path = _cache_files(cache_dir, fp)
    try:
        meta = json.loads(meta_path.read_text())
        n = int(meta["images"])
        expected = n * 3 * image_size * image_size
        if n <= 0 or data_path.stat().st_size != expected:
            return None
        # copy-on-write map: shared pages, and torch.from_numpy accepts it (nothing writes to it)
        arr = np.memmap(data_path, dtype=np.uint8, mode="c", shape=(n, 3, image_size, image_size))
        return arr, meta
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _decode_into_cache(files: list[Path], root: Path, image_size: int, data_path: Path,
                       workers: int, progress: Callable[[int, int], None] | None
                       ) -> tuple[int, Counter, list[tuple[str, str]]]:
    """Decode `files` into a temp file beside `data_path`, compact out the failures, rename it
    into place. Returns (usable images, skip reasons, examples)."""
    row = 3 * image_size * image_size
    tmp = data_path.with_name(f".{data_path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    ok = np.zeros(len(files), dtype=bool)
    reasons: dict[int, str] = {}
    done = 0
    lock = threading.Lock()
    try:
        out = np.memmap(tmp, dtype=np.uint8, mode="w+", shape=(len(files), 3, image_size, image_size))

        def work(start: int, stop: int) -> None:
            nonlocal done
            for i in range(start, stop):
                try:
                    out[i] = decode_image(files[i], image_size)
                    ok[i] = True
                except BadImage as exc:
                    reasons[i] = str(exc)
            with lock:
                done += stop - start
                if progress:
                    progress(done, len(files))

        chunk = 256
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(work, s, min(s + chunk, len(files)))
                       for s in range(0, len(files), chunk)]
            for f in futures:
                f.result()
        # Compact in place: usable rows move down over the holes, then the tail is cut off,
        # so there is never a second full copy of the data in memory or on disk.
        keep = np.flatnonzero(ok)
        for dst, src in enumerate(keep):
            if dst != src:
                out[dst] = out[src]
        out.flush()
        del out
        with open(tmp, "r+b") as f:
            f.truncate(len(keep) * row)
            f.flush()
            os.fsync(f.fileno())
        if len(keep):
            os.replace(tmp, data_path)
            fsync_dir(data_path.parent)
        else:
            tmp.unlink()
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    counts = Counter(reasons.values())
    examples = [(str(files[i].relative_to(root)), r) for i, r in sorted(reasons.items())[:20]]
    return len(keep), counts, examples


def load_dataset(root: Path, image_size: int = 96, cache_dir: Path | None = None,
                 max_images: int = 0, workers: int | None = None,
                 progress: Callable[[int, int], None] | None = None) -> ImageDataset:
    """Find, decode (first time only) and map the images under `root`.

    Unreadable, truncated or too-small files are skipped and counted, never fatal. A folder with
    no usable image raises DataError naming the folder.
    """
    root = Path(root)
    real_root = root.resolve()
    candidates = find_images(root)
    # Never open a file that a symlink places outside the data folder.
    files, outside = [], 0
    for p in candidates:
        if Path(os.path.realpath(p)).is_relative_to(real_root):
            files.append(p)
        else:
            outside += 1
    if max_images:
        files = files[:max_images]
    if not files:
        raise DataError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) found in {root}")
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    fp = fingerprint(root, files, image_size)
    cached = _open_cached(cache_dir, fp, image_size)
    if cached is None:
        data_path, meta_path = _cache_files(cache_dir, fp)
        n, counts, examples = _decode_into_cache(
            files, root, image_size, data_path, workers or min(32, (os.cpu_count() or 1) * 2), progress)
        if outside:
            counts["outside the data folder"] += outside
        meta = {"images": n, "files_found": len(candidates), "image_size": image_size,
                "transform": TRANSFORM_VERSION, "skipped_by_reason": dict(counts),
                "skipped_examples": examples, "root": str(root)}
        if n == 0:
            detail = ", ".join(f"{k}: {v}" for k, v in counts.most_common()) or "none decoded"
            raise DataError(f"no usable image in {root} ({len(files)} files tried; {detail})")
        atomic_write_bytes(meta_path, json.dumps(meta, indent=1).encode())
        cached = _open_cached(cache_dir, fp, image_size)
        if cached is None:
            raise DataError(f"image cache in {cache_dir} could not be read back after writing it")
    arr, meta = cached
    return ImageDataset(images=arr, root=root, fingerprint=fp,
                        files_found=int(meta.get("files_found", len(files))),
                        skipped=dict(meta.get("skipped_by_reason", {})),
                        skipped_examples=[tuple(x) for x in meta.get("skipped_examples", [])],
                        cache_path=_cache_files(cache_dir, fp)[0])
