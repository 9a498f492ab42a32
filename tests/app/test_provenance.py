"""Provenance: the PNGs the service writes say where they came from, in PNG text chunks."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

import model.imageio as imageio
from model.checkpoint import SERVING_ENTRIES, load_epoch
from model.provenance import generator_checksum, software
from model.rundir import RunDir


def text_of(body: bytes) -> dict[str, str]:
    with Image.open(io.BytesIO(body)) as im:
        im.load()
        return dict(im.text)


def checksum_of(runs, job_id: str, epoch: int) -> str:
    _, state = load_epoch(RunDir(runs / job_id).checkpoints, epoch, entries=SERVING_ENTRIES)
    return generator_checksum(state)


def test_a_generated_grid_names_its_checkpoint_seed_faces_and_options(served, served_runs):
    c, job_id = served
    r = c.get("/generate?seed=42&n=16&nrow=4&truncation=1.5")
    text = text_of(r.content)
    assert text == {"Software": software(), "job": job_id, "epoch": "2", "checkpoint": "epoch-0002.pt",
                    "checkpoint_checksum": checksum_of(served_runs[0], job_id, 2), "kind": "grid",
                    "seed": "42", "faces": "0-15", "n": "16", "nrow": "4", "truncation": "1.5",
                    "best_of": "none"}
    assert text["Software"].startswith("dcgan-faces ") and text["checkpoint_checksum"].startswith("crc32:")
    assert c.get("/generate?seed=42&n=16&nrow=4&truncation=1.5").content == r.content  # still deterministic
    ranked = text_of(c.get("/generate?seed=3&n=2&best_of=5").content)
    assert (ranked["best_of"], ranked["faces"], ranked["n"]) == ("5", "best 2 of 0-4 by D", "2")
    older = text_of(c.get(f"/generate?seed=3&n=2&job={job_id}&epoch=1").content)
    assert (older["epoch"], older["nrow"], older["faces"], older["truncation"]) == ("1", "2", "0-1", "none")
    assert older["checkpoint_checksum"] == checksum_of(served_runs[0], job_id, 1) != text["checkpoint_checksum"]


def test_an_interpolation_strip_carries_both_seeds(served):
    c, job_id = served
    text = text_of(c.get("/interpolate?seed_a=1&seed_b=9&steps=3").content)
    assert (text["kind"], text["seed_a"], text["seed_b"], text["steps"], text["job"]) == (
        "interpolation", "1", "9", "3", job_id)


def test_zip_members_carry_the_provenance_of_generate_n1_byte_for_byte(served):
    c, _ = served
    z = zipfile.ZipFile(io.BytesIO(c.get("/faces.zip?seeds=5,6&truncation=0.8").content))
    member = z.read("seed0005.png")
    assert member == c.get("/generate?seed=5&n=1&truncation=0.8").content
    assert (text_of(member)["seed"], text_of(member)["faces"], text_of(member)["nrow"]) == ("5", "0", "1")


@pytest.mark.parametrize("fast", [True, False])
def test_both_png_encoders_write_the_text_readably_and_deterministically(fast, monkeypatch):
    if not fast:
        monkeypatch.setattr(imageio, "_isal_zlib", None)
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    text = {"Software": "dcgan-faces 0", "seed": "7", "note": "caf\u00e9 \u9854"}  # the last needs iTXt
    a, b = imageio.encode_png(rgb, text=text), imageio.encode_png(rgb, text=text)
    assert a == b and text_of(a) == text
    with Image.open(io.BytesIO(a)) as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), rgb)
    assert imageio.encode_png(rgb) != a and text_of(imageio.encode_png(rgb)) == {}


def test_a_jobs_model_card_names_its_data_config_and_best_checkpoint(served, served_runs):
    c, job_id = served
    card = c.get(f"/jobs/{job_id}/card").json()
    data = (served_runs[0] / job_id / "data.json").read_text()
    assert card["job_id"] == job_id and card["state"] == "succeeded"
    assert card["software"] == software() and card["data"]["fingerprint"] in data
    assert card["data"]["images"] > 0 and "skipped_examples" not in card["data"]
    assert card["config"]["epochs"] == 2
    assert [ck["name"] for ck in card["checkpoints"]] == ["epoch-0001.pt", "epoch-0002.pt"]
    scored = [ck for ck in card["checkpoints"] if ck["swd"] is not None]  # the tiny job measures none
    assert card["best"] == (min(scored, key=lambda ck: ck["swd"]) if scored else None)
    assert c.get("/jobs/20990101-000000-abcdef/card").status_code == 404
    assert c.get("/jobs/..%2Fetc/card").status_code in (404, 422)
