"""The training images: found once, decoded once, kept as one memory-mapped uint8 array.

The seed decodes every JPEG again in every epoch. Here a folder is decoded in parallel into
`<cache>/<fingerprint>.u8` (N x 3 x S x S uint8, about 1.4 GB for 51,223 faces), keyed by a
fingerprint of the file list, sizes, mtimes and the transform, and every later epoch, job and
resume maps that file instead of reading any image.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import json
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, TimeoutError
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from model.fsutil import atomic_write_bytes, fsync_dir

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
# Part of the cache key: bump when decode_image changes what it produces.
TRANSFORM_VERSION = "rgb-on-white/resize-short-side-bilinear-antialias/center-crop/v2"
# Images smaller than this on either side are skipped: upscaled, they would only teach blur.
MIN_SIDE = 8
# The decoders Pillow may use, whatever a file's content says it is. Pillow otherwise picks the
# decoder from the content, so an EPS file named .jpg would run Ghostscript; none of these
# starts an external program.
PIL_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF")
# Pixels one file may have (after JPEG's reduced-scale decoding): a 40 Mpx photo is fine, a
# 13000x13000 PNG is skipped as "too many pixels" before a byte of it is decoded.
MAX_PIXELS = 40_000_000
# Bytes of decoded pixels that all decode threads together may hold at once, whatever the
# number of cores; a file needing more than this is skipped.
DECODE_MEMORY = 1 << 30
# On more than 2 cores, folders of at least this many files are decoded in processes, one per
# core (model/parallel.py): threads hold the GIL between decoder calls, and more of them than two
# decoded slower, not faster (BENCHMARKS.md). On 2 cores threads and processes measured the same.
PROCESS_DECODE_MIN = 1024
# Bytes per pixel of each Pillow mode while decoding (unknown modes count as the largest).
_MODE_BYTES = {"1": 1, "L": 1, "P": 1, "LA": 2, "La": 2, "PA": 2, "RGB": 3, "YCbCr": 3, "LAB": 3, "HSV": 3,
               "RGBA": 4, "RGBa": 4, "RGBX": 4, "CMYK": 4, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2,
               "I": 4, "F": 4}


class DataError(ValueError):
    """The data folder cannot be trained on; the message names the folder and the reason."""


class BadImage(Exception):
    """One file is not a usable image; the message is the short reason recorded in the stats."""


class CacheSpaceError(DataError):
    """The disk cannot hold the decoded image cache; the message says how much it needs."""


class DecodeStopped(Exception):
    """should_stop() asked for a stop while the folder was being decoded."""


class _MemoryBudget:
    """Decode threads reserve the bytes a file will need before decoding it, and wait while the
    reservations of the others would take the total past `capacity`."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.used = capacity, 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        if nbytes > self.capacity:
            raise BadImage("too many pixels")
        with self._cond:
            self._cond.wait_for(lambda: self.used + nbytes <= self.capacity)
            self.used += nbytes
        try:
            yield
        finally:
            with self._cond:
                self.used -= nbytes
                self._cond.notify_all()


@dataclass
class ImageDataset:
    """Decoded images plus what was skipped on the way."""
    images: np.ndarray  # uint8, N x 3 x S x S, memory-mapped (never written)
    root: Path
    fingerprint: str
    files_found: int
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    skipped_examples: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)

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


def _image_files(root: Path) -> Iterator[Path]:
    """Image files under `root` (ImageFolder layout or flat) as os.walk finds them, hidden
    entries skipped, symlinked folders not followed."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                yield Path(dirpath) / name


def count_image_files(root: Path) -> int:
    """How many files under `root` the loader would try to decode (before any is read)."""
    return sum(1 for _ in _image_files(root))


def _check_folder(root: Path) -> None:
    if not root.exists():
        raise DataError(f"data folder {root} does not exist")
    if not root.is_dir():
        raise DataError(f"data folder {root} is not a folder")


def find_images(root: Path) -> list[Path]:
    """Image files under `root`, sorted."""
    root = Path(root)
    _check_folder(root)
    return sorted(_image_files(root))


def has_images(root: Path) -> bool:
    """Whether `root` holds at least one file `find_images` would list (stops at the first)."""
    root = Path(root)
    _check_folder(root)
    return next(_image_files(root), None) is not None


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
        a = np.asarray(im)
        if a.size and a.max() > 255:  # a 16-bit range: keep the top 8 bits
            a = np.clip(a.astype(np.float32) * (1 / 257) + 0.5, 0, 255)
        im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    return im.convert("RGB")


_UNLIMITED = _MemoryBudget(1 << 62)


def decode_image(path: Path, size: int, budget: _MemoryBudget = _UNLIMITED) -> np.ndarray:
    """One file -> uint8 3 x size x size: shorter side resized to `size`, centre-cropped (the
    seed's Resize + CenterCrop). Raises BadImage with a short reason, whatever goes wrong with
    the file: one bad file never fails a whole folder."""
    try:
        if os.path.getsize(path) == 0:
            raise BadImage("empty file")
    except OSError:
        raise BadImage("unreadable") from None
    return _decode(path, size, budget, PIL_FORMATS, MAX_PIXELS, single_frame=False)


def decode_upload(data: bytes, size: int, formats: tuple[str, ...], max_pixels: int) -> np.ndarray:
    """An uploaded picture (its bytes, which may be anything) -> uint8 3 x size x size, as
    decode_image makes training images: centre-cropped to a square, resized to `size`. Only the
    decoders in `formats` may read it, at most `max_pixels` are decoded, and an animated file
    (more than one frame) is refused: BadImage with a short reason for each problem."""
    if not data:
        raise BadImage("empty file")
    return _decode(io.BytesIO(data), size, _UNLIMITED, formats, max_pixels, single_frame=True)


def _decode(source: Path | BinaryIO, size: int, budget: _MemoryBudget, formats: tuple[str, ...],
            max_pixels: int, single_frame: bool) -> np.ndarray:
    try:
        with Image.open(source, formats=formats) as im:
            if single_frame and getattr(im, "n_frames", 1) != 1:
                raise BadImage("animated (more than one frame)")
            im.draft(None, (size, size))  # JPEG: let libjpeg decode big photos at a reduced scale
            w, h = im.size
            if min(w, h) < MIN_SIDE:
                raise BadImage(f"smaller than {MIN_SIDE}px")
            if w * h > max_pixels:
                raise BadImage("too many pixels")
            # the decoded image, one converted copy of it (float32 for 16-bit) and the RGB result
            with budget.reserve(w * h * (_MODE_BYTES.get(im.mode, 8) + 4 + 3)):
                im.load()
                im = _to_rgb(im)
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
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage("too many pixels") from None
    except MemoryError:
        raise BadImage("too large to decode") from None
    except OSError as exc:
        msg = str(exc).lower()
        raise BadImage("truncated" if "truncated" in msg else "unreadable") from None
    except Exception as exc:  # any decoder's own failure (NotImplementedError, ValueError, ...)
        raise BadImage(f"unreadable ({type(exc).__name__})") from None


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


_DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def _space_error(nbytes: int, cache_dir: Path) -> CacheSpaceError:
    st = os.statvfs(cache_dir)
    return CacheSpaceError(
        f"disk full: the decoded image cache needs {_size(nbytes)} in {cache_dir} and only "
        f"{_size(st.f_bavail * st.f_frsize)} is free; free some space (or point DCGAN_CACHE_DIR "
        "at a larger disk), then resume the job")


def _check_space(fd: int, nbytes: int, cache_dir: Path) -> None:
    """Fail at once, saying how much is needed, when the disk cannot hold the cache; then size
    the temp file (sparse: its blocks are allocated as the decoded rows are written, with
    pwrite, so a disk that fills up later is an ENOSPC, reported the same way, never a SIGBUS
    from a memory map). Allocating the blocks up front (fallocate) made every later write pay
    to convert them: 12x slower writes measured on ext4 (BENCHMARKS.md)."""
    st = os.statvfs(cache_dir)
    if st.f_bavail * st.f_frsize < nbytes:
        raise _space_error(nbytes, cache_dir)
    os.ftruncate(fd, nbytes)


def _write_rows(fd: int, rows: np.ndarray, first: int) -> None:
    """Rows first, first+1, ... of the cache file from `rows` (k x 3 x S x S uint8)."""
    view = memoryview(np.ascontiguousarray(rows)).cast("B")
    offset = first * rows[0].nbytes
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _size(nbytes: int) -> str:
    return f"{nbytes / 1e9:.2f} GB" if nbytes >= 1e9 else f"{nbytes / 1e6:.1f} MB"


def remove_stale_decodes(cache_dir: Path) -> list[Path]:
    """Delete the temp files of decodes whose process died (each live decode holds a lock on its
    temp file, so one that can be locked is abandoned)."""
    removed = []
    for p in Path(cache_dir).glob(".*.u8.tmp-*"):
        try:
            fd = os.open(p, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # alive
        finally:
            os.close(fd)
        with contextlib.suppress(OSError):
            p.unlink()
            removed.append(p)
    return removed


def _decode_rows(files: list[Path], size: int, budget: _MemoryBudget, stop: Callable[[], bool]
                 ) -> tuple[np.ndarray, list[str | None]]:
    """Decode `files` into a k x 3 x size x size array, and for each file None (decoded) or the
    reason it was skipped (its row stays zero). Ends early, with what it has, when stop()."""
    out = np.zeros((len(files), 3, size, size), dtype=np.uint8)
    reasons: list[str | None] = []
    for k, path in enumerate(files):
        if stop():
            break
        try:
            out[k] = decode_image(path, size, budget)
            reasons.append(None)
        except BadImage as exc:
            reasons.append(str(exc))
    return out, reasons


def decode_chunk(tmp: str, size: int, files: list[str], start: int, budget_bytes: int
                 ) -> dict[str, Any]:
    """A decode process's task (model/parallel.py): files start, start+1, ... into their rows
    of the temp file, with its own slice of the memory budget (one file at a time, so a file
    needing more than that is left for the parent: "too many pixels"). Returns each file's
    reason (None: decoded), or the errno of a full disk."""
    rows, reasons = _decode_rows([Path(f) for f in files], size, _MemoryBudget(budget_bytes), lambda: False)
    fd = os.open(tmp, os.O_WRONLY | os.O_CLOEXEC)
    try:
        _write_rows(fd, rows, start)
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            return {"disk_full": exc.errno}
        raise
    finally:
        os.close(fd)
    return {"reasons": reasons}


def _wait_all(futures: list, should_stop: Callable[[], bool], on_done: Callable[[Any], None]) -> bool:
    """Each future's result to on_done, in order, while polling should_stop(); False (the rest
    cancelled) as soon as it says stop."""
    for f in futures:
        while True:
            if should_stop():
                for other in futures:
                    other.cancel()
                return False
            try:
                on_done(f.result(timeout=0.2))
                break
            except TimeoutError:
                continue
    return True


def _decode_into_cache(files: list[Path], root: Path, image_size: int, data_path: Path,
                       workers: int, processes: int, progress: Callable[[int, int], None] | None,
                       should_stop: Callable[[], bool]) -> tuple[int, Counter, list[tuple[str, str]]]:
    """Decode `files` into a temp file beside `data_path`, compact out the failures, rename it
    into place. Returns (usable images, skip reasons, examples). Raises DecodeStopped when
    should_stop() turns true, CacheSpaceError when the disk cannot hold the cache; either way
    the temp file is gone. With `processes` > 1 the files are decoded in that many processes
    (model/parallel.py), otherwise on `workers` threads."""
    row = 3 * image_size * image_size
    remove_stale_decodes(data_path.parent)
    tmp = data_path.with_name(f".{data_path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    results: dict[int, str | None] = {}
    chunk = 64
    chunks = [(s, files[s:s + chunk]) for s in range(0, len(files), chunk)]

    def record(start: int, reasons: list[str | None]) -> None:
        results.update(zip(range(start, start + len(reasons)), reasons, strict=True))
        if progress:
            progress(len(results), len(files))

    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # "alive" to remove_stale_decodes in other processes
        _check_space(fd, len(files) * row, data_path.parent)
        stop = threading.Event()
        try:
            if processes > 1:
                from model.parallel import map_in_processes

                def merge(task_start: int, answer: dict[str, Any]) -> None:
                    if "disk_full" in answer:
                        raise OSError(answer["disk_full"], os.strerror(answer["disk_full"]))
                    record(task_start, answer["reasons"])

                tasks = [(str(tmp), image_size, [str(p) for p in part], s, DECODE_MEMORY // processes)
                         for s, part in chunks]
                if not map_in_processes("model.data:decode_chunk", tasks, processes,
                                        lambda answer, i: merge(tasks[i][3], answer), should_stop):
                    stop.set()
                # Files too large for one process's share of the memory: the parent, with all of it.
                chunks = [(i, [files[i]]) for i, r in sorted(results.items()) if r == "too many pixels"]
            if not stop.is_set() and chunks:
                budget = _MemoryBudget(DECODE_MEMORY)

                def work(start: int, part: list[Path]) -> tuple[int, list[str | None]]:
                    rows, reasons = _decode_rows(part, image_size, budget, stop.is_set)
                    _write_rows(fd, rows[:len(reasons)], start)
                    return start, reasons

                with ThreadPoolExecutor(max_workers=workers) as pool:
                    futures = [pool.submit(work, s, part) for s, part in chunks]
                    if not _wait_all(futures, should_stop, lambda r: record(*r)):
                        stop.set()
            if stop.is_set():
                raise DecodeStopped()
            # Compact in place: usable rows move down over the holes, then the tail is cut off,
            # so there is never a second full copy of the data in memory or on disk.
            keep = [i for i, r in sorted(results.items()) if r is None]
            for dst, src in enumerate(keep):
                if dst != src:
                    os.pwrite(fd, os.pread(fd, row, src * row), dst * row)
            os.ftruncate(fd, len(keep) * row)
            os.fsync(fd)
        except OSError as exc:
            if exc.errno in _DISK_FULL:
                raise _space_error(len(files) * row, data_path.parent) from None
            raise
        if keep:
            os.replace(tmp, data_path)
            fsync_dir(data_path.parent)
        else:
            tmp.unlink()
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    finally:
        os.close(fd)
    reasons = {i: r for i, r in sorted(results.items()) if r is not None}
    counts = Counter(reasons.values())
    examples = [(str(files[i].relative_to(root)), r) for i, r in list(reasons.items())[:20]]
    return len(keep), counts, examples


def load_dataset(root: Path, image_size: int = 96, cache_dir: Path | None = None,
                 max_images: int = 0, workers: int | None = None, processes: int | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 should_stop: Callable[[], bool] = lambda: False) -> ImageDataset:
    """Find, decode (first time only) and map the images under `root`.

    On more than 2 cores a folder of PROCESS_DECODE_MIN files or more is decoded in one process
    per core (or `processes`, when given), otherwise on `workers` threads.

    Unreadable, truncated, too-small or too-large files are skipped and counted, never fatal. A
    folder with no usable image raises DataError naming the folder; a disk too small for the
    cache, CacheSpaceError; should_stop() during decoding, DecodeStopped (within a fraction of
    a second, whatever the folder's size).
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
        if processes is None:
            from model.parallel import cpu_count
            cores = cpu_count()
            processes = cores if len(files) >= PROCESS_DECODE_MIN and cores > 2 else 1
        n, counts, examples = _decode_into_cache(
            files, root, image_size, data_path, workers or min(16, (os.cpu_count() or 1) * 2), processes,
            progress, should_stop)
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
                        skipped_examples=[tuple(x) for x in meta.get("skipped_examples", [])])
