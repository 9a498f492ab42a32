"""`python -m model publish`: a static site of faces that resumes and never mixes checkpoints."""
import json
import os
import shutil

import pytest
from PIL import Image

from model.checkpoint import SERVING_ENTRIES, load_epoch
from model.cli import main
from model.config import ConfigError
from model.faces import render_faces
from model.provenance import generator_checksum, provenance
from model.publish import publish, ranges
from model.rundir import RunDir
from model.sampling import networks_from_checkpoint
from model.train import train
from tests.helpers import tiny_config


@pytest.fixture(scope="module")
def run(tmp_path_factory, image_folder):
    run = tmp_path_factory.mktemp("publish") / "20260101-000000-abcdef"
    train(tiny_config(epochs=1), run, data_dir=image_folder)
    return run


def test_each_seed_gets_the_face_generate_shows_and_the_site_says_what_it_holds(run, tmp_path):
    done = publish(run, [3, 0, 1, 2, 10], tmp_path / "site", device="cpu")
    assert (done.written, done.kept, done.checkpoint.name) == (5, 0, "epoch-0001.pt")
    names = sorted(p.name for p in (tmp_path / "site").iterdir())
    assert names == ["index.html", "manifest.json", "seed000000.png", "seed000001.png", "seed000002.png",
                     "seed000003.png", "seed000010.png"]
    ref, state = load_epoch(RunDir(run).checkpoints, None, entries=SERVING_ENTRIES)
    g, _ = networks_from_checkpoint(state)
    text = provenance(run.name, 1, "epoch-0001.pt", generator_checksum(state), "grid", seed=3, faces="0", n=1,
                      nrow=1, truncation=None, best_of=None)  # what /generate?seed=3&n=1 writes
    assert (tmp_path / "site" / "seed000003.png").read_bytes() == render_faces(g, [3], None, lambda s: text)[0]
    manifest = json.loads((tmp_path / "site" / "manifest.json").read_text())
    assert manifest["seeds"] == [[0, 3], [10, 10]] and manifest["count"] == 5 and manifest["format"] == "png"
    assert manifest["checkpoint"] == "epoch-0001.pt" and len(manifest["sha256"]) == 64
    page = (tmp_path / "site" / "index.html").read_text()
    assert '"seeds": [[0, 3], [10, 10]]' in page and "<script src" not in page  # nothing to fetch


def test_an_interrupted_publish_resumes_where_it_stopped(run, tmp_path):
    site = tmp_path / "site"
    publish(run, range(12), site, device="cpu")
    for s in (2, 7, 11):
        os.remove(site / f"seed{s:06d}.png")
    (site / ".seed000002.png.tmp-abc").write_bytes(b"half a file")  # a writer killed mid-file
    done = publish(run, range(12), site, device="cpu")
    assert (done.written, done.kept) == (3, 9)
    assert not [p for p in os.listdir(site) if ".tmp-" in p]
    more = publish(run, range(10, 20), site, device="cpu")  # adding seeds keeps the old ones listed
    assert (more.written, more.kept) == (8, 2)
    assert json.loads((site / "manifest.json").read_text())["seeds"] == [[0, 19]]


def test_another_checkpoint_or_format_is_refused_in_a_used_folder(run, tmp_path, image_folder):
    site = tmp_path / "site"
    publish(run, range(3), site, device="cpu")
    with pytest.raises(ConfigError, match=r"holds the faces of epoch-0001.pt \(png\); publish epoch-0001.pt \(webp\)"):
        publish(run, range(3), site, fmt="webp", device="cpu")
    longer = tmp_path / run.name
    shutil.copytree(run, longer)
    train(tiny_config(epochs=2), longer, data_dir=image_folder)
    with pytest.raises(ConfigError, match="into an empty folder"):
        publish(longer, range(3), site, device="cpu")
    assert sorted(os.listdir(site)) == ["index.html", "manifest.json", "seed000000.png", "seed000001.png",
                                        "seed000002.png"]


def test_webp_faces_decode(run, tmp_path):
    publish(run, [5], tmp_path / "site", fmt="webp", device="cpu")
    with Image.open(tmp_path / "site" / "seed000005.webp") as im:
        assert im.format == "WEBP" and im.size == (96, 96)


def test_the_command_line_publishes_and_refuses_bad_seeds_in_one_line(run, tmp_path, capsys):
    assert main(["publish", "--run", str(run), "--seeds", "0-3", "--out", str(tmp_path / "s"), "--device", "cpu"]) == 0
    assert "4 faces written" in capsys.readouterr().out
    assert main(["publish", "--run", str(run), "--seeds", "9-3", "--out", str(tmp_path / "s")]) == 2
    assert capsys.readouterr().err.strip() == "error: --seeds: range 9-3 is reversed; write 3-9"


def test_seed_ranges_are_compact():
    assert ranges([5, 1, 2, 3, 9, 10, 2]) == [[1, 3], [5, 5], [9, 10]]
