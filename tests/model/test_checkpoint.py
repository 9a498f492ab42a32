import os
import pickle

import pytest
import torch

from model import checkpoint as ckpt
from model.checkpoint import CheckpointError, list_checkpoints, load_checkpoint, load_latest, save_checkpoint
from model.train import train
from tests.helpers import tiny_config


def minimal_state(epoch):
    return {"config": tiny_config().to_dict(), "epoch": epoch, "batch": 0, "step": epoch * 6,
            "generator": {"w": torch.full((3,), float(epoch))}}


def test_save_then_load_round_trips(tmp_path):
    save_checkpoint(minimal_state(1), tmp_path / "epoch-0001.pt")
    state = load_checkpoint(tmp_path / "epoch-0001.pt")
    assert state["epoch"] == 1 and torch.equal(state["generator"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["epoch-0001.pt"]  # no temp file left


def test_a_crash_while_writing_leaves_no_partial_file_under_a_final_name(tmp_path, monkeypatch):
    save_checkpoint(minimal_state(1), tmp_path / "epoch-0001.pt")

    def dying_save(obj, f):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(minimal_state(2), tmp_path / "epoch-0002.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0001.pt"]
    assert load_checkpoint(tmp_path / "epoch-0001.pt")["epoch"] == 1


def test_stale_temp_files_are_cleaned(tmp_path):
    (tmp_path / ".epoch-0003.pt.tmp-abc").write_bytes(b"junk")
    save_checkpoint(minimal_state(2), tmp_path / "epoch-0002.pt")
    ckpt.clean_checkpoint_folder(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["epoch-0002.pt"]


@pytest.mark.parametrize("damage", ["truncate", "bitflip", "garbage"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous(tmp_path, damage):
    save_checkpoint(minimal_state(1), tmp_path / "epoch-0001.pt")
    save_checkpoint(minimal_state(2), tmp_path / "epoch-0002.pt")
    newest = tmp_path / "epoch-0002.pt"
    raw = bytearray(newest.read_bytes())
    if damage == "truncate":
        newest.write_bytes(raw[: len(raw) // 2])
    elif damage == "bitflip":
        for i in range(len(raw) // 4, len(raw) // 4 + 64):
            raw[i] ^= 0xFF
        newest.write_bytes(bytes(raw))
    else:
        newest.write_bytes(os.urandom(len(raw)))
    ref, state, problems = load_latest(tmp_path)
    assert ref.epoch == 1 and state["epoch"] == 1
    assert len(problems) == 1 and "epoch-0002.pt" in problems[0]


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-checkpoint",))


def test_a_pickle_that_runs_code_is_refused_and_never_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "epoch-0005.pt").write_bytes(pickle.dumps({"format": ckpt.FORMAT, "x": _Exploit()}))
    with pytest.raises(CheckpointError, match="not a loadable checkpoint"):
        load_checkpoint(tmp_path / "epoch-0005.pt")
    assert not (tmp_path / "pwned-by-checkpoint").exists()


def test_a_tensor_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "epoch-0001.pt")
    with pytest.raises(CheckpointError, match="not a dcgan-faces checkpoint"):
        load_checkpoint(tmp_path / "epoch-0001.pt")


def test_training_resumes_from_the_previous_checkpoint_when_the_newest_is_corrupt(image_folder, tmp_path):
    train(tiny_config(epochs=3), tmp_path / "run", data_dir=image_folder)
    newest = tmp_path / "run" / "checkpoints" / "epoch-0003.pt"
    newest.write_bytes(newest.read_bytes()[:1000])
    warnings = []
    result = train(tiny_config(epochs=3), tmp_path / "run", progress=warnings.append, data_dir=image_folder)
    assert result.epoch == 3 and result.step == 18  # epoch 3 was trained again from epoch 2
    assert any(e.warning and "epoch-0003.pt" in e.warning for e in warnings)
    assert load_checkpoint(newest)["epoch"] == 3


def test_checkpoints_sort_by_training_position_not_name(tmp_path):
    for name in ["epoch-0002.pt", "epoch-0002-b000003.pt", "epoch-0010.pt", "epoch-0001.pt", "notes.pt"]:
        (tmp_path / name).write_bytes(b"")
    assert [(r.epoch, r.batch) for r in list_checkpoints(tmp_path)] == [(1, 0), (2, 0), (2, 3), (10, 0)]


def test_a_single_flipped_bit_inside_tensor_data_is_caught(tmp_path):
    state = minimal_state(1)
    state["generator"]["big"] = torch.zeros(100_000)
    save_checkpoint(state, tmp_path / "epoch-0001.pt")
    raw = bytearray((tmp_path / "epoch-0001.pt").read_bytes())
    at = raw.find(bytes(4096))  # well inside the zeros tensor's data
    raw[at + 2048] ^= 0x01
    (tmp_path / "epoch-0001.pt").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(tmp_path / "epoch-0001.pt")


def test_serving_reads_and_checks_only_the_entries_it_needs(image_folder, tmp_path):
    from model.checkpoint import SERVING_ENTRIES
    train(tiny_config(epochs=1), tmp_path / "run", data_dir=image_folder)
    path = tmp_path / "run" / "checkpoints" / "epoch-0001.pt"
    raw = torch.load(path, weights_only=True)
    first = next(iter(raw["optimizer_g"]["state"].values()))
    first["exp_avg"].add_(1.0)  # damage training state only, keeping the stored checksums
    torch.save(raw, path)
    served = load_checkpoint(path, entries=SERVING_ENTRIES)
    assert set(served) == {"config", "epoch", "step", "generator", "generator_ema", "discriminator"}
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(path)  # resuming training checks everything and refuses it
    raw["generator"]["main.0.weight"].add_(1.0)
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(path, entries=SERVING_ENTRIES)


def test_checkpoints_of_the_first_format_still_load(tmp_path):
    state = {"format": "dcgan-faces-checkpoint/1", "config": {}, "epoch": 1, "step": 2,
             "generator": {"w": torch.ones(2)}}
    state["checksum"] = ckpt.content_checksum(state)
    torch.save(state, tmp_path / "epoch-0001.pt")
    assert load_checkpoint(tmp_path / "epoch-0001.pt", entries=["generator"])["generator"]["w"].sum() == 2
    state["generator"]["w"][0] = 5
    torch.save(state, tmp_path / "epoch-0001.pt")
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(tmp_path / "epoch-0001.pt")


def test_an_epochs_checkpoint_is_its_end_of_epoch_one_never_a_mid_epoch_one(tmp_path):
    for name in ("epoch-0001.pt", "epoch-0002-b000003.pt", "epoch-0003.pt"):
        save_checkpoint(minimal_state(1), tmp_path / name)
    refs = list_checkpoints(tmp_path)
    assert [r.ends_epoch for r in refs] == [True, False, True]
    assert ckpt.epoch_end(refs, 3).name == "epoch-0003.pt" and ckpt.epoch_end(refs, 2) is None
    with pytest.raises(CheckpointError, match="available: 1, 3"):
        ckpt.load_epoch(tmp_path, 2)
