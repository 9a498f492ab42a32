import numpy as np
import pytest
from PIL import Image

import model.data as data_mod
from model.data import DataError, decode_image, load_dataset
from model.train import train
from tests.helpers import tiny_config, write_blob_images


def test_images_are_decoded_once_per_folder_not_once_per_epoch(tmp_path, monkeypatch):
    folder = write_blob_images(tmp_path / "imgs", 48)
    opened = []
    real_decode = data_mod.decode_image
    monkeypatch.setattr(data_mod, "decode_image", lambda p, *a: opened.append(p) or real_decode(p, *a))
    cfg = tiny_config(epochs=3)
    train(cfg, tmp_path / "run1", data_dir=folder, cache_dir=tmp_path / "cache")
    assert len(opened) == 48  # three epochs, each file decoded exactly once
    train(cfg, tmp_path / "run2", data_dir=folder, cache_dir=tmp_path / "cache")
    assert len(opened) == 48  # a second job on the same folder reads no image at all


def test_cache_is_rebuilt_when_a_file_changes(tmp_path):
    folder = write_blob_images(tmp_path / "imgs", 20)
    a = load_dataset(folder, cache_dir=tmp_path / "cache")
    write_blob_images(tmp_path / "extra", 1)
    (tmp_path / "extra" / "class0" / "00000.png").rename(folder / "class0" / "new.png")
    b = load_dataset(folder, cache_dir=tmp_path / "cache")
    assert a.fingerprint != b.fingerprint and len(b) == 21


def test_cached_pixels_match_a_fresh_decode(tmp_path):
    folder = write_blob_images(tmp_path / "imgs", 5)
    ds = load_dataset(folder, cache_dir=tmp_path / "cache")
    assert ds.images.shape == (5, 3, 96, 96) and ds.images.dtype == np.uint8
    first = sorted((folder / "class0").iterdir())[0]
    assert np.array_equal(ds.images[0], decode_image(first, 96))


def test_flat_folders_and_every_extension_are_found(tmp_path):
    for i, ext in enumerate(["jpg", "jpeg", "png", "webp", "bmp", "PNG"]):
        Image.new("RGB", (40, 30), (i * 40, 10, 10)).save(tmp_path / f"img{i}.{ext}",
                                                          format={"jpg": "JPEG", "PNG": "PNG"}.get(ext, ext.upper()))
    (tmp_path / "notes.txt").write_text("not an image")
    assert len(load_dataset(tmp_path, cache_dir=tmp_path / ".c")) == 6


def test_broken_files_are_skipped_and_counted(tmp_path):
    folder = write_blob_images(tmp_path / "imgs", 10, ext="jpg")
    sub = folder / "class0"
    (sub / "empty.jpg").write_bytes(b"")
    (sub / "text.png").write_text("this is not a png")
    (sub / "truncated.jpg").write_bytes((sub / "00000.jpg").read_bytes()[:300])
    Image.new("RGB", (1, 1)).save(sub / "tiny.png")
    ds = load_dataset(folder, cache_dir=tmp_path / "cache")
    assert len(ds) == 10
    assert ds.skipped == {"empty file": 1, "not an image": 1, "truncated": 1, "smaller than 8px": 1}
    assert {name for name, _ in ds.skipped_examples} >= {"class0/empty.jpg", "class0/text.png"}


def test_odd_modes_decode_to_rgb(tmp_path):
    Image.new("RGBA", (50, 60), (255, 0, 0, 0)).save(tmp_path / "transparent.png")
    Image.new("L", (50, 50), 128).save(tmp_path / "grey.png")
    Image.new("CMYK", (50, 50), (0, 255, 0, 0)).save(tmp_path / "cmyk.jpg")
    Image.fromarray(np.full((50, 50), 65535, dtype=np.uint16)).save(tmp_path / "deep.png")
    frames = [Image.new("RGB", (40, 40), c) for c in ((0, 0, 255), (0, 255, 0))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    px = {p.stem: decode_image(p, 96)[:, 48, 48].tolist() for p in tmp_path.iterdir()}
    assert px["transparent"] == [255, 255, 255]  # alpha composited onto white
    assert px["grey"] == [128, 128, 128]
    assert px["deep"] == [255, 255, 255]  # 16-bit scaled, not clipped garbage
    assert px["anim"][2] > 200  # first frame
    assert px["cmyk"][0] > 200 and px["cmyk"][1] < 60  # magenta


def test_non_square_images_are_resized_and_centre_cropped(tmp_path):
    a = np.zeros((100, 300, 3), np.uint8)
    a[:, 100:200] = 255  # white centre third
    Image.fromarray(a).save(tmp_path / "wide.png")
    out = decode_image(tmp_path / "wide.png", 96)
    assert out.shape == (3, 96, 96) and out.min() > 240  # only the white third is kept


@pytest.mark.parametrize("make,words", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: (p / "f.txt").write_text("x") and p / "f.txt", "is not a folder"),
    (lambda p: p, "no image files"),
])
def test_unusable_folders_fail_at_once_naming_the_folder(tmp_path, make, words):
    target = make(tmp_path)
    with pytest.raises(DataError, match=words) as err:
        load_dataset(target, cache_dir=tmp_path / ".cache")
    assert str(target) in str(err.value)


def test_a_folder_of_only_broken_files_names_the_folder_and_reasons(tmp_path):
    (tmp_path / "a.png").write_text("nope")
    (tmp_path / "b.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=r"no usable image in .*not an image: 1"):
        load_dataset(tmp_path, cache_dir=tmp_path / ".cache")


def test_symlinks_out_of_the_data_folder_are_not_read(tmp_path):
    outside = write_blob_images(tmp_path / "outside", 1)
    folder = write_blob_images(tmp_path / "data", 3)
    (folder / "class0" / "link.png").symlink_to(outside / "class0" / "00000.png")
    ds = load_dataset(folder, cache_dir=tmp_path / "cache")
    assert len(ds) == 3 and ds.skipped == {"outside the data folder": 1}


def test_too_few_images_for_one_batch_is_a_clear_error(tmp_path):
    folder = write_blob_images(tmp_path / "imgs", 5)
    with pytest.raises(DataError, match="fewer than one batch of 16"):
        train(tiny_config(), tmp_path / "run", data_dir=folder)
    assert not (tmp_path / "run" / "config.json").exists()


# -- hostile and unlucky data (docs/RELIABILITY.md, "Data") -----------------------------------

def _png_header_only(width: int, height: int, bit_depth: int = 16) -> bytes:
    """A PNG that announces width x height pixels (grey, 16-bit) and carries almost no data:
    what a decompression bomb looks like to anyone who reads only its header."""
    import struct
    import zlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        chunk(b"IEND", b"")


def test_a_file_of_another_format_named_like_an_image_is_never_given_to_its_decoder(tmp_path, monkeypatch):
    import subprocess
    ran = []
    monkeypatch.setattr(subprocess, "check_call", lambda *a, **k: ran.append(a))
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: ran.append(a))
    eps = tmp_path / "face.jpg"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nshowpage\n%%EOF\n")
    Image.new("RGB", (64, 64)).save(tmp_path / "tiff.png", format="TIFF")
    for path in (eps, tmp_path / "tiff.png"):
        with pytest.raises(data_mod.BadImage, match="not an image"):
            decode_image(path, 96)
    assert ran == []  # Ghostscript (or anything else) was never started


def test_any_failure_inside_a_decoder_skips_just_that_file(tmp_path, monkeypatch):
    folder = write_blob_images(tmp_path / "imgs", 4)
    victim = sorted((folder / "class0").iterdir())[1]
    real_open = Image.open

    def fragile_open(path, *args, **kwargs):
        if str(path) == str(victim):
            raise NotImplementedError("this DDS variant")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(data_mod.Image, "open", fragile_open)
    ds = load_dataset(folder, cache_dir=tmp_path / "cache")
    assert len(ds) == 3 and ds.skipped == {"unreadable (NotImplementedError)": 1}


def test_a_decompression_bomb_is_skipped_from_its_header_without_decoding(tmp_path, monkeypatch):
    (tmp_path / "bomb.png").write_bytes(_png_header_only(13000, 13000))
    loads = []
    monkeypatch.setattr(Image.Image, "load", lambda self: loads.append(self.size))
    with pytest.raises(data_mod.BadImage, match="too many pixels"):
        decode_image(tmp_path / "bomb.png", 96)
    assert loads == []


def test_decoding_threads_never_hold_more_pixels_than_the_budget():
    import threading
    budget = data_mod._MemoryBudget(100)
    peak, lock = [0], threading.Lock()

    def use(n):
        with budget.reserve(n):
            with lock:
                peak[0] = max(peak[0], budget.used)
            threading.Event().wait(0.01)

    threads = [threading.Thread(target=use, args=(40,)) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] <= 100 and budget.used == 0
    with pytest.raises(data_mod.BadImage, match="too many pixels"), budget.reserve(101):
        pass


@pytest.mark.parametrize("processes", [1, 2], ids=["threads", "processes"])
def test_a_stop_request_ends_the_first_decode_promptly_and_leaves_no_temp_file(tmp_path, processes):
    """With decode processes, stopping kills them."""
    import time
    folder = write_blob_images(tmp_path / "imgs", 600 * processes)
    seen = []
    t0 = time.monotonic()
    with pytest.raises(data_mod.DecodeStopped):
        load_dataset(folder, cache_dir=tmp_path / "cache", workers=2, processes=processes,
                     progress=lambda d, n: seen.append(d), should_stop=lambda: bool(seen))
    assert time.monotonic() - t0 < 10 and seen and seen[-1] < 600 * processes
    assert list((tmp_path / "cache").iterdir()) == []


def test_the_temp_file_of_a_dead_decode_is_removed_by_the_next_one(tmp_path):
    folder = write_blob_images(tmp_path / "imgs", 3)
    (tmp_path / "cache").mkdir()
    stale = tmp_path / "cache" / ".abc.u8.tmp-999999-1"
    stale.write_bytes(b"\0" * 1000)
    load_dataset(folder, cache_dir=tmp_path / "cache")
    assert not stale.exists()


@pytest.fixture
def tiny_disk(tmp_path):
    import subprocess
    mount = tmp_path / "tiny-disk"
    mount.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"mounting a small tmpfs needs root: {r.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_disk_too_small_for_the_cache_fails_at_once_saying_how_much_it_needs(tmp_path, tiny_disk):
    folder = write_blob_images(tmp_path / "imgs", 120)  # 120 x 27,648 bytes: 3.3 MB > 2 MB
    with pytest.raises(data_mod.CacheSpaceError,
                       match=r"disk full: the decoded image cache needs 3\.3 MB in .* only 2\.1 MB is free"):
        load_dataset(folder, cache_dir=tiny_disk)
    assert list(tiny_disk.iterdir()) == []  # no temp file keeps the disk full


def test_a_long_training_log_is_thinned_as_it_is_read(tmp_path):
    import json

    from model.rundir import RunDir
    run = RunDir(tmp_path)
    with open(run.metrics_path, "w") as f:
        for step in range(1, 200_001):
            f.write(json.dumps({"kind": "interval", "epoch": 1 + step // 1000, "step": step, "loss_d": 1.0}) + "\n")
            if step % 1000 == 0:
                f.write(json.dumps({"kind": "epoch", "epoch": step // 1000, "step": step,
                                    **({"swd": 1.0} if step % 50_000 == 0 else {})}) + "\n")
    rows = run.read_metrics(max_rows=500)
    steps = [r["step"] for r in rows if r["kind"] == "interval"]
    assert 250 <= len(steps) <= 500 and steps == sorted(steps) and steps[0] == 1 and steps[-1] > 190_000
    gaps = {b - a for a, b in zip(steps, steps[1:], strict=False)}
    assert len(gaps) == 1  # evenly spaced
    epochs = [r for r in rows if r["kind"] == "epoch"]
    assert len(epochs) <= 500 and sum("swd" in r for r in epochs) == 4  # every measured point kept


def test_metrics_lines_that_are_not_rows_are_skipped(tmp_path):
    import json

    from model.rundir import RunDir
    run = RunDir(tmp_path)
    good = {"kind": "epoch", "epoch": 1, "step": 4, "loss_d": 1.0, "swd": 2.0}
    bad = ["[" * 50_000, '{"a":' * 20_000, '"a string"', '{"kind": ["epoch"]}', '{"kind": "epoch", "epoch": "1"}',
           '{"kind": "epoch", "step": 5}', '{"kind": "interval", "step": 2.5}', '{"kind": "epoch", "epoch": true}',
           '{"kind": "interval", "step": 3, "loss_d": "high"}', '{"kind": "epoch", "epoch": 2, "swd": [1]}']
    diverged = f'{{"kind": "interval", "epoch": 1, "step": 6, "loss_d": NaN, "loss_g": 1e999, "d_x": {10**400}}}'
    run.metrics_path.write_text("\n".join([json.dumps(good), *bad, diverged, ""]))
    rows = run.read_metrics(max_rows=100)
    assert rows == [good, {"kind": "interval", "epoch": 1, "step": 6, "loss_d": None, "loss_g": None, "d_x": None}]
    assert run.read_metrics() == rows


def test_an_endless_metrics_line_is_skipped_without_being_held(tmp_path):
    import json
    import tracemalloc

    from model.rundir import RunDir
    run = RunDir(tmp_path)
    row = {"kind": "interval", "epoch": 1, "step": 1, "loss_d": 1.0}
    with open(run.metrics_path, "wb") as f:
        f.write(json.dumps(row).encode() + b"\n")
        f.truncate(f.tell() + (256 << 20))  # 256 MiB of NULs without a newline (sparse: no disk)
        f.seek(0, 2)
        f.write(b"\n" + json.dumps({**row, "step": 2}).encode() + b"\n")
    tracemalloc.start()
    try:
        rows = run.read_metrics(max_rows=10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [r["step"] for r in rows] == [1, 2]
    assert peak < 8 << 20, f"{peak / 2**20:.0f} MiB held to read it"


# -- decoding in processes (model/parallel.py) -------------------------------------------------

def _bad_and_good(folder):
    sub = write_blob_images(folder, 150, ext="jpg") / "class0"
    (sub / "empty.jpg").write_bytes(b"")
    (sub / "text.png").write_text("this is not a png")
    (sub / "truncated.jpg").write_bytes((sub / "00000.jpg").read_bytes()[:300])
    return folder


def test_decoding_in_processes_gives_the_threads_result(tmp_path):
    folder = _bad_and_good(tmp_path / "imgs")
    threads = load_dataset(folder, cache_dir=tmp_path / "a", processes=1)
    procs = load_dataset(folder, cache_dir=tmp_path / "b", processes=3)
    assert len(procs) == len(threads) == 150 and np.array_equal(procs.images, threads.images)
    assert procs.skipped == threads.skipped == {"empty file": 1, "not an image": 1, "truncated": 1}
    assert procs.skipped_examples == threads.skipped_examples


def test_a_file_too_big_for_one_process_share_of_the_memory_is_decoded_by_the_parent(tmp_path, monkeypatch):
    folder = write_blob_images(tmp_path / "imgs", 20)
    Image.new("RGB", (200, 200), (200, 30, 30)).save(folder / "class0" / "big.png")
    monkeypatch.setattr(data_mod, "DECODE_MEMORY", 500_000)  # a process's share: 250 kB < 400 kB needed
    ds = load_dataset(folder, cache_dir=tmp_path / "cache", processes=2)
    assert len(ds) == 21 and ds.skipped == {}
    assert ds.images[20].reshape(3, -1).mean(1).round().tolist() == [200, 30, 30]


def test_a_daemonic_process_such_as_a_celery_worker_decodes_in_processes(tmp_path):
    import multiprocessing
    folder = write_blob_images(tmp_path / "imgs", 40)
    ctx = multiprocessing.get_context("fork")
    result = ctx.Queue()
    p = ctx.Process(target=_count_in_processes, args=(folder, tmp_path / "cache", result), daemon=True)
    p.start()
    p.join(60)
    assert result.get(timeout=5) == 40


def _count_in_processes(folder, cache, result):
    result.put(len(load_dataset(folder, cache_dir=cache, processes=2)))


def test_a_disk_that_fills_while_processes_decode_is_a_clear_error(tmp_path, tiny_disk, monkeypatch):
    import os
    folder = write_blob_images(tmp_path / "imgs", 60)  # 1.7 MB on a 2 MB disk with 0.8 MB taken
    (tiny_disk / "filler").write_bytes(b"\0" * 200_000)
    (tiny_disk / "filler2").write_bytes(b"\0" * 600_000)
    # As when another writer fills the disk after the up-front check: the writes find it full.
    monkeypatch.setattr(data_mod, "_check_space", lambda fd, n, d: os.ftruncate(fd, n))
    with pytest.raises(data_mod.CacheSpaceError, match="disk full"):
        load_dataset(folder, cache_dir=tiny_disk, processes=2)
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler", "filler2"]


def test_a_task_that_fails_in_a_child_process_is_raised_with_its_traceback():
    from model.parallel import ChildError, map_in_processes
    got = []
    with pytest.raises(ChildError, match="ZeroDivisionError"):
        map_in_processes("operator:truediv", [(1, 2), (1, 0), (3, 4)], 2, lambda r, i: got.append((i, r)))
    ok = []
    assert map_in_processes("operator:truediv", [(1, 2), (3, 4)], 2, lambda r, i: ok.append((i, r)))
    assert sorted(ok) == [(0, 0.5), (1, 0.75)]
