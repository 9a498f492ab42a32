"""`python -m model ...` as a user runs it: real processes, exit codes, one-line errors."""
import subprocess
import sys

import pytest
from PIL import Image

from model.cli import main

TINY = ["--ngf", "8", "--ndf", "8", "--batch-size", "16", "--snapshot-epochs", "1", "--swd-images", "0"]


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "model", *map(str, args)], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


@pytest.fixture(scope="module")
def trained_run(image_folder, tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "run"
    r = cli("train", "--data", image_folder, "--out", run, "--epochs", "2", *TINY)
    assert r.returncode == 0, r.stderr
    assert "2/2 epochs" in r.stdout
    return run


def test_train_then_extend_with_more_epochs(trained_run):
    r = cli("train", "--out", trained_run, "--epochs", "3")
    assert r.returncode == 0, r.stderr
    assert "3/3 epochs" in r.stdout and (trained_run / "checkpoints" / "epoch-0003.pt").exists()


def test_generate_writes_a_grid(trained_run, tmp_path):
    out = tmp_path / "grid.png"
    r = cli("generate", "--run", trained_run, "--seed", "42", "--n", "64", "--out", out)
    assert r.returncode == 0, r.stderr
    assert Image.open(out).size == (786, 786)
    again = tmp_path / "again.png"
    cli("generate", "--run", trained_run, "--seed", "42", "--n", "64", "--out", again)
    assert out.read_bytes() == again.read_bytes()
    text = Image.open(out).text  # provenance (model/provenance.py)
    assert text["Software"].startswith("dcgan-faces ") and text["checkpoint_checksum"].startswith("crc32:")
    assert (text["job"], text["seed"], text["faces"], text["n"], text["truncation"]) == (
        trained_run.name, "42", "0-63", "64", "none")
    assert text["checkpoint"] == f"epoch-{int(text['epoch']):04d}.pt"  # the newest (2, or 3 once extended)


def test_generate_best_of_truncation_and_epoch(trained_run, tmp_path):
    out = tmp_path / "best.jpg"
    r = cli("generate", "--run", trained_run, "--epoch", "1", "--n", "4", "--nrow", "2",
            "--best-of", "16", "--truncation", "0.8", "--out", out)
    assert r.returncode == 0, r.stderr
    assert Image.open(out).format == "JPEG" and Image.open(out).size == (198, 198)


@pytest.mark.parametrize("args,words", [
    (["train", "--out", "{tmp}/new"], "give --data DIR"),
    (["train", "--out", "{tmp}/new", "--data", "{tmp}/nowhere"], "does not exist"),
    (["train", "--out", "{tmp}/new", "--data", "{tmp}", "--batch-size", "1"], "batch_size must be >= 2"),
    (["train", "--out", "{tmp}/new", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["train", "--out", "{tmp}/new", "--snapshot-epochs", "1,x"], "comma-separated"),
    (["generate", "--run", "{tmp}/missing", "--out", "{tmp}/x.png"], "not a run directory"),
    (["generate", "--run", "{run}", "--epoch", "99", "--out", "{tmp}/x.png"], "no checkpoint for epoch 99"),
    (["generate", "--run", "{run}", "--out", "{tmp}/x.gif"], "must end in .png"),
    (["generate", "--run", "{run}", "--n", "0", "--out", "{tmp}/x.png"], "--n must be between"),
    (["generate", "--run", "{run}", "--truncation", "0", "--out", "{tmp}/x.png"], "--truncation must be > 0"),
    (["train", "--out", "{run}", "--ngf", "16"], "different config (ngf: 8 -> 16)"),
])
def test_user_errors_are_one_line_and_a_non_zero_exit(trained_run, tmp_path, capsys, args, words):
    # In-process (the same main() the module runs) to keep the suite quick; one case below
    # checks the real process end to end.
    try:
        code = main([a.format(tmp=tmp_path, run=trained_run) for a in args])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert words in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_real_process_reports_a_bad_folder_in_one_line(tmp_path):
    r = cli("train", "--out", tmp_path / "run", "--data", tmp_path / "nowhere")
    assert r.returncode == 2 and r.stderr.strip() == f"error: data folder {tmp_path / 'nowhere'} does not exist"


@pytest.mark.parametrize("command", ["train", "generate", "synth"])
def test_every_command_has_help(command):
    r = cli(command, "--help")
    assert r.returncode == 0 and "--out" in r.stdout
