import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import model.synth as synth
from model.data import load_dataset
from model.synth import draw_face, write_dataset

REPO = Path(__file__).resolve().parents[2]


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.int16)


def test_same_seed_and_index_give_the_same_pixels():
    assert draw_face(3, 7).tobytes() == draw_face(3, 7).tobytes()
    assert draw_face(3, 7).tobytes() != draw_face(3, 8).tobytes()
    assert draw_face(3, 7).tobytes() != draw_face(4, 7).tobytes()


def test_an_image_does_not_depend_on_what_was_drawn_before():
    forward = [draw_face(1, i).tobytes() for i in range(4)]
    backward = [draw_face(1, i).tobytes() for i in reversed(range(4))][::-1]
    assert forward == backward
    assert len(set(forward)) == 4


def test_same_pixels_in_a_fresh_interpreter_without_torch():
    code = ("import hashlib, sys; from model.synth import draw_face; "
            "print(hashlib.sha256(draw_face(2, 5).tobytes()).hexdigest()); "
            "assert 'torch' not in sys.modules and 'numpy' not in sys.modules")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == hashlib.sha256(draw_face(2, 5).tobytes()).hexdigest()


@pytest.mark.parametrize("size", [96, 64, 128])
def test_size_and_mode(size):
    img = draw_face(0, 0, size)
    assert img.mode == "RGB" and img.size == (size, size)


@pytest.mark.parametrize("index", range(8))
def test_images_show_a_face_not_a_flat_picture(index):
    rgb = pixels(draw_face(0, index))
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 500
    # Light, warm skin (r > g > b) fills much of the middle, as in cropped face datasets.
    skin = (r > 200) & (r - g > 8) & (g - b > 0) & (r - b < 90)
    assert skin[32:72, 28:68].mean() > 0.25
    # The middle (eyes, mouth) holds far more detail than the border (background, hair).
    edges = (np.abs(np.diff(rgb, axis=0))[:, :-1] + np.abs(np.diff(rgb, axis=1))[:-1]).sum(-1)
    border = np.ones(edges.shape, bool)
    border[12:-12, 12:-12] = False
    assert edges[32:72, 24:72].mean() > 1.5 * edges[border].mean()
    # Pupils and lash lines: near-black pixels; and white highlights.
    assert (rgb.sum(axis=-1) < 200).sum() > 20
    assert (rgb > 235).all(axis=-1).sum() > 3


def test_write_dataset_writes_an_image_folder(tmp_path):
    calls = []
    written = write_dataset(tmp_path, 10, seed=5, workers=2, progress=lambda d, n: calls.append((d, n)))
    assert written == 10
    folder = tmp_path / "faces"
    assert [p.name for p in sorted(tmp_path.iterdir())] == ["faces"]
    assert sorted(os.listdir(folder)) == [f"{i:05d}.png" for i in range(10)]  # no temp files
    for i in (0, 9):
        with Image.open(folder / f"{i:05d}.png") as img:
            assert img.mode == "RGB" and img.size == (96, 96)
            assert img.tobytes() == draw_face(5, i).tobytes()
    assert calls[-1] == (10, 10)
    assert len(load_dataset(tmp_path, cache_dir=tmp_path / "cache")) == 10


def test_a_rerun_keeps_existing_files_and_fills_the_gaps(tmp_path):
    folder = tmp_path / "faces"
    assert write_dataset(tmp_path, 6, seed=1) == 6
    before = {p.name: p.stat() for p in folder.iterdir()}
    (folder / "00003.png").unlink()
    assert write_dataset(tmp_path, 6, seed=1) == 1
    assert write_dataset(tmp_path, 6, seed=1) == 0
    for name, st in before.items():
        now = (folder / name).stat()
        if name != "00003.png":
            assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    with Image.open(folder / "00003.png") as img:
        assert img.tobytes() == draw_face(1, 3).tobytes()
    assert write_dataset(tmp_path, 8, seed=1) == 2  # a larger set extends a smaller one


def test_a_failed_write_leaves_no_partial_or_temp_file(tmp_path, monkeypatch):
    real_save = Image.Image.save
    saved = []

    def flaky_save(img, fp, *args, **kwargs):
        if len(saved) == 3:
            fp.write(b"\x89PNG half a file")
            raise OSError("disk full")
        saved.append(1)
        return real_save(img, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", flaky_save)
    with pytest.raises(OSError, match="disk full"):
        write_dataset(tmp_path, 6, workers=1)
    names = sorted(os.listdir(tmp_path / "faces"))
    assert names == [f"{i:05d}.png" for i in range(3)]
    monkeypatch.setattr(Image.Image, "save", real_save)
    assert write_dataset(tmp_path, 6, workers=1) == 3


def test_an_exception_from_progress_stops_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(synth, "CHUNK", 2)

    def cancel(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_dataset(tmp_path, 40, workers=1, progress=cancel)
    left = os.listdir(tmp_path / "faces")
    assert 2 <= len(left) <= 12 and all(not n.startswith(".") for n in left)


def test_empty_and_invalid_counts(tmp_path):
    assert write_dataset(tmp_path, 0) == 0
    assert os.listdir(tmp_path / "faces") == []
    with pytest.raises(ValueError):
        write_dataset(tmp_path, -1)
