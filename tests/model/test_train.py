import json
import platform

import pytest
import torch

from model.checkpoint import list_checkpoints, load_checkpoint
from model.config import ConfigError
from model.train import train
from tests.helpers import assert_same_weights, tiny_config


def weights(run_dir, epoch):
    return load_checkpoint(run_dir / "checkpoints" / f"epoch-{epoch:04d}.pt")["generator"]


def test_run_directory_has_everything_the_gallery_needs(image_folder, tmp_path):
    cfg = tiny_config(epochs=3, snapshot_epochs=(1, 2, 50), swd_images=32)
    result = train(cfg, tmp_path / "run", data_dir=image_folder)
    run = tmp_path / "run"
    assert result.epoch == 3 and result.step == 3 * 6 and not result.stopped
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 3
    assert torch.load(run / "fixed_noise.pt", weights_only=True).shape == (64, 100, 1, 1)
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == [
        "epoch-0001.png", "epoch-0002.png", "epoch-0003.png"]  # 50 dropped, the last added
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in rows if r["kind"] == "epoch"]
    intervals = [r for r in rows if r["kind"] == "interval"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3] and len(intervals) == 9
    for r in epochs + intervals:
        assert {"epoch", "step", "loss_d", "loss_g", "d_x", "d_g_z", "images_per_sec"} <= r.keys()
        assert ("epoch_seconds" in r) == (r["kind"] == "epoch")
    assert all("swd" in r for r in epochs) and all(r["swd"] > 0 for r in epochs)
    assert json.loads((run / "data.json").read_text())["images"] == 96
    from PIL import Image
    with Image.open(run / "reals.png") as reals:  # 64 training images, the grid's size
        assert reals.size == (786, 786)


def test_snapshot_grid_is_8x8_of_96px_with_2px_gutters(image_folder, tmp_path):
    from PIL import Image
    train(tiny_config(epochs=1), tmp_path / "run", data_dir=image_folder)
    with Image.open(tmp_path / "run" / "snapshots" / "epoch-0001.png") as im:
        assert im.size == (786, 786) and im.mode == "RGB"
        assert (im.text["kind"], im.text["job"], im.text["epoch"], im.text["checkpoint"], im.text["nrow"]) == (
            "snapshot", "run", "1", "epoch-0001.pt", "8")


@pytest.mark.parametrize("d_every,g_every", [(1, 5), (2, 3), (1, 1)])
def test_d_and_g_are_updated_on_the_seeds_schedule(image_folder, tmp_path, d_every, g_every):
    train(tiny_config(epochs=2, d_every=d_every, g_every=g_every), tmp_path / "run", data_dir=image_folder)
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "epoch-0002.pt")
    steps = lambda opt: int(next(iter(opt["state"].values()))["step"])  # noqa: E731
    per_epoch = 6  # batch indices 0..5, update when index % every == 0
    assert steps(state["optimizer_d"]) == 2 * len(range(0, per_epoch, d_every))
    assert steps(state["optimizer_g"]) == 2 * len(range(0, per_epoch, g_every))


def test_resume_continues_from_last_checkpoint_bit_exactly(image_folder, tmp_path):
    train(tiny_config(epochs=4), tmp_path / "straight", data_dir=image_folder)
    train(tiny_config(epochs=2), tmp_path / "resumed", data_dir=image_folder)
    result = train(tiny_config(epochs=4), tmp_path / "resumed", data_dir=image_folder)
    assert result.epoch == 4 and result.step == 24
    assert_same_weights(weights(tmp_path / "straight", 4), weights(tmp_path / "resumed", 4))
    ema = lambda run: load_checkpoint(run / "checkpoints" / "epoch-0004.pt")["generator_ema"]  # noqa: E731
    assert_same_weights(ema(tmp_path / "straight"), ema(tmp_path / "resumed"))


def test_should_stop_checkpoints_within_one_batch_and_resume_is_exact(image_folder, tmp_path):
    polls = []

    def stop():
        polls.append(1)
        return len(polls) > 8  # 8 batches run, the 9th poll says stop

    result = train(tiny_config(epochs=3), tmp_path / "run", should_stop=stop, data_dir=image_folder)
    assert result.stopped and result.step == 8 and result.epoch == 1
    assert result.checkpoint.name == "epoch-0001-b000002.pt"
    state = load_checkpoint(result.checkpoint)
    assert (state["epoch"], state["batch"], state["step"]) == (1, 2, 8)
    train(None, tmp_path / "run")  # resumes with the stored config and data folder
    train(tiny_config(epochs=3), tmp_path / "straight", data_dir=image_folder)
    assert_same_weights(weights(tmp_path / "straight", 3), weights(tmp_path / "run", 3))


def test_checkpoints_keep_the_last_three_and_every_snapshot_epoch(image_folder, tmp_path):
    train(tiny_config(epochs=7, snapshot_epochs=(1, 2)), tmp_path / "run", data_dir=image_folder)
    kept = [(r.epoch, r.batch) for r in list_checkpoints(tmp_path / "run" / "checkpoints")]
    assert kept == [(1, 0), (2, 0), (5, 0), (6, 0), (7, 0)]


def test_an_extended_run_keeps_the_checkpoints_of_its_earlier_measured_epochs(image_folder, tmp_path):
    # Epoch 2 was the first run's last (snapshotted, SWD measured) epoch; extended to 7 it is no
    # snapshot epoch any more, but the default model may serve it for its SWD.
    train(tiny_config(epochs=2, swd_images=32), tmp_path / "run", data_dir=image_folder)
    train(tiny_config(epochs=7, swd_images=32), tmp_path / "run", data_dir=image_folder)
    kept = [(r.epoch, r.batch) for r in list_checkpoints(tmp_path / "run" / "checkpoints")]
    assert kept == [(1, 0), (2, 0), (5, 0), (6, 0), (7, 0)]


def test_a_different_config_on_an_existing_run_is_refused(image_folder, tmp_path):
    train(tiny_config(epochs=1), tmp_path / "run", data_dir=image_folder)
    with pytest.raises(ConfigError, match=r"different config \(ngf: 8 -> 16\)"):
        train(tiny_config(epochs=1, ngf=16), tmp_path / "run", data_dir=image_folder)
    with pytest.raises(ConfigError, match="only a larger epochs"):
        train(tiny_config(epochs=1, lr=1e-3), tmp_path / "run", data_dir=image_folder)


def test_more_epochs_extend_a_finished_run(image_folder, tmp_path):
    train(tiny_config(epochs=1), tmp_path / "run", data_dir=image_folder)
    result = train(tiny_config(epochs=2), tmp_path / "run", data_dir=image_folder)
    assert result.epoch == 2
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["epochs"] == 2


def test_progress_reports_epochs_done_losses_speed_and_eta(image_folder, tmp_path):
    seen = []
    train(tiny_config(epochs=2), tmp_path / "run", progress=seen.append, data_dir=image_folder,
          cache_dir=tmp_path / "cache")  # a fresh cache: the images are decoded, and that is reported
    assert seen[0].phase == "data" and any(e.decoded == 96 and e.files == 96 for e in seen)
    # Decoding over, one report says what it made of the files, before any batch is trained.
    begins = [i for i, e in enumerate(seen) if e.data is not None]
    assert len(begins) == 1 and seen[begins[0]].phase == "train" and seen[begins[0]].step == 0
    assert seen[begins[0]].data["images"] == 96 and all(e.phase == "data" for e in seen[:begins[0]])
    rows = [e for e in seen if e.phase == "train" and e.data is None]
    assert all(e.loss_d is not None and e.images_per_sec > 0 and e.eta_seconds is not None for e in rows)
    # log_every=2, 6 batches an epoch: three interval reports then the epoch's end, twice
    assert [(e.epochs_done, e.batch, e.epoch_end) for e in rows] == [
        (0, 2, False), (0, 4, False), (0, 6, False), (1, 0, True),
        (1, 2, False), (1, 4, False), (1, 6, False), (2, 0, True)]
    assert [e.step for e in rows] == [2, 4, 6, 6, 8, 10, 12, 12]
    ends = [e for e in rows if e.epoch_end]
    assert [e.checkpoint for e in ends] == ["epoch-0001.pt", "epoch-0002.pt"]
    assert ends[-1].eta_seconds == 0 and seen[-1].phase == "done" and seen[-1].epochs_done == 2


def test_ema_is_on_by_default_and_off_when_asked(image_folder, tmp_path):
    assert tiny_config().ema_decay == 0.99
    train(tiny_config(epochs=1, ema_decay=0.0), tmp_path / "run", data_dir=image_folder)
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "epoch-0001.pt")["generator_ema"] is None


def test_ema_generator_is_kept_when_asked_and_used_for_sampling(image_folder, tmp_path):
    train(tiny_config(epochs=1, ema_decay=0.9), tmp_path / "run", data_dir=image_folder)
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "epoch-0001.pt")
    ema, raw = state["generator_ema"], state["generator"]
    assert ema is not None and not torch.equal(ema["main.0.weight"], raw["main.0.weight"])
    from model.sampling import networks_from_checkpoint
    g, _ = networks_from_checkpoint(state)
    assert torch.equal(g.state_dict()["main.0.weight"], ema["main.0.weight"])


HEAP_PROBE = """
import ctypes, sys
if sys.argv[1] == "tuned":
    from model.runtime import tune_host_allocator
    assert tune_host_allocator()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
addr = libc.malloc(16 << 20)  # an activation-sized buffer
for line in open("/proc/self/maps"):
    lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
    if lo <= addr < hi:
        print("heap" if line.rstrip().endswith("[heap]") else "mmap")
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
@pytest.mark.parametrize("mode,where", [("default", "mmap"), ("tuned", "heap")])
def test_the_tuned_allocator_serves_activation_sized_buffers_from_the_heap(mode, where):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", HEAP_PROBE, mode], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == where
