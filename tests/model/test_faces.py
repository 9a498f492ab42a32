"""One PNG per seed: the same bytes as a one-face grid, rendered chunk by chunk; and the CLI's
bulk mode (`generate --seeds 0-9,42 --outdir DIR`)."""
from __future__ import annotations

import subprocess
import sys

import pytest

import model.faces as faces
from model.checkpoint import SERVING_ENTRIES, load_epoch
from model.cli import main
from model.imageio import encode_png, grid_rgb
from model.provenance import generator_checksum, provenance
from model.rundir import RunDir
from model.sampling import generate, networks_from_checkpoint
from tests.model.test_export import fake_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return fake_run(tmp_path_factory.mktemp("faces") / "run")


@pytest.fixture(scope="module")
def g(run_dir):
    _, state = load_epoch(RunDir(run_dir).checkpoints, None, entries=SERVING_ENTRIES)
    return networks_from_checkpoint(state)[0]


def one_face_grid(g, seed: int, truncation: float | None = None, text: dict | None = None) -> bytes:
    """What /generate?seed=S&n=1 encodes (given its provenance `text`)."""
    return encode_png(grid_rgb(generate(g, seed, 1, truncation)), text=text)


def cli_text(run_dir, seed: int, truncation: float | None = None) -> dict[str, str]:
    """The provenance the CLI writes into a face of the run's newest checkpoint: /generate's."""
    ref, state = load_epoch(RunDir(run_dir).checkpoints, None, entries=SERVING_ENTRIES)
    return provenance(run_dir.name, ref.epoch, ref.name, generator_checksum(state), "grid", seed=seed,
                      faces="0", n=1, nrow=1, truncation=truncation, best_of=None)


def test_a_seeds_face_is_the_one_face_grid_of_that_seed_whatever_its_batch_mates(g):
    seeds = [*range(60), 1000, 5, 77, 123456, 4294967295]  # 65: crosses a chunk boundary
    pngs = faces.render_faces(g, seeds)
    assert len(pngs) == len(seeds)
    for k in (0, 5, 59, 60, 63, 64):
        assert pngs[k] == one_face_grid(g, seeds[k]), f"seed {seeds[k]}"
    assert faces.render_faces(g, [7], truncation=0.7)[0] == one_face_grid(g, 7, 0.7)


def test_faces_are_rendered_one_chunk_at_a_time_as_they_are_taken(g, monkeypatch):
    calls = []
    real = faces.render_faces
    monkeypatch.setattr(faces, "render_faces",
                        lambda g, seeds, t=None, text=None: calls.append(len(seeds)) or real(g, seeds, t, text))
    it = faces.iter_faces(g, range(150))
    first = next(it)
    assert first[0] == 0 and calls == [64]
    rest = list(it)
    assert calls == [64, 64, 22] and [s for s, _ in rest] == list(range(1, 150))


def test_face_names_follow_stylegan():
    assert [faces.face_name(s) for s in (0, 42, 12345, 4294967295)] == [
        "seed0000.png", "seed0042.png", "seed12345.png", "seed4294967295.png"]


def test_the_cli_writes_one_png_per_seed_with_a_progress_bar(run_dir, g, tmp_path):
    out = tmp_path / "faces"
    r = subprocess.run([sys.executable, "-m", "model", "generate", "--run", str(run_dir), "--seeds", "0-9,42,3",
                        "--outdir", str(out)], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"seed{s:04d}.png" for s in [*range(10), 42]]
    assert (out / "seed0042.png").read_bytes() == one_face_grid(g, 42, text=cli_text(run_dir, 42))
    assert "11/11" in r.stderr and "faces" in r.stderr  # tqdm's bar
    assert r.stdout.startswith(f"{out}: 11 faces")


def test_the_cli_bulk_mode_honours_truncation_and_epoch(run_dir, g, tmp_path):
    assert main(["generate", "--run", str(run_dir), "--epoch", "3", "--seeds", "5", "--truncation", "0.6",
                 "--outdir", str(tmp_path)]) == 0
    assert (tmp_path / "seed0005.png").read_bytes() == one_face_grid(g, 5, 0.6, cli_text(run_dir, 5, 0.6))


@pytest.mark.parametrize("args,words", [
    (["--seeds", "9-0", "--outdir", "{tmp}"], "--seeds: range 9-0 is reversed; write 0-9"),
    (["--seeds", "1,x", "--outdir", "{tmp}"], "--seeds: 'x' is neither a seed nor a range"),
    (["--seeds", "0-1000000", "--outdir", "{tmp}"], "more than the limit of 1000000"),
    (["--seeds", "4294967296", "--outdir", "{tmp}"], "out of range 0..4294967295"),
    (["--seeds", "0-9"], "needs both --seeds LIST and --outdir DIR"),
    (["--outdir", "{tmp}"], "needs both --seeds LIST and --outdir DIR"),
    (["--seeds", "0-9", "--outdir", "{tmp}", "--out", "{tmp}/x.png"], "--out and --best-of are for a grid"),
    (["--seeds", "0-9", "--outdir", "{tmp}", "--best-of", "8"], "--out and --best-of are for a grid"),
    ([], "give --out FILE for a grid, or --seeds LIST --outdir DIR"),
])
def test_bulk_mode_errors_are_one_line(run_dir, tmp_path, capsys, args, words):
    argv = ["generate", "--run", str(run_dir), *[a.format(tmp=tmp_path) for a in args]]
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and words in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not list(tmp_path.glob("*.png"))
