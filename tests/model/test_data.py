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
    monkeypatch.setattr(data_mod, "decode_image", lambda p, s: opened.append(p) or real_decode(p, s))
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
