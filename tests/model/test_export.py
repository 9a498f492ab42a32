"""Exported generators: the serving weights and config in each format, loadable and runnable
with the format's own library alone, drawing the faces the service draws."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from model.checkpoint import SERVING_ENTRIES, CheckpointError, checkpoint_name, load_epoch, save_checkpoint
from model.cli import main
from model.export import FORMAT, ExportError, MissingLibrary, export_run
from model.faces import face_noise
from model.networks import networks_for
from model.provenance import generator_checksum, software
from model.rundir import RunDir
from model.sampling import networks_from_checkpoint, run_generator
from tests.helpers import tiny_config
from tests.standalone import run_standalone

SEEDS = [0, 1, 2, 42, 7]  # five: not the batch of two the exporters trace with

ORT_SCRIPT = """
import json
import numpy as np
import onnxruntime as ort
sess = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
(images,) = sess.run(["images"], {"noise": np.load(sys.argv[2])})
np.save(sys.argv[3], images)
inp, out = sess.get_inputs()[0], sess.get_outputs()[0]
print(json.dumps({"meta": sess.get_modelmeta().custom_metadata_map,
                  "input": [inp.name, inp.shape, inp.type], "output": [out.name, out.shape]}))
"""

SAFETENSORS_SCRIPT = """
import json
from safetensors import safe_open
with safe_open(sys.argv[1], framework="numpy") as f:
    shapes = {k: list(f.get_tensor(k).shape) for k in f.keys()}
    print(json.dumps({"meta": f.metadata(), "shapes": shapes}))
"""

TORCHSCRIPT_SCRIPT = """
import warnings
import numpy as np
import torch
warnings.simplefilter("ignore")
extra = {"config.json": ""}
net = torch.jit.load(sys.argv[1], _extra_files=extra)
with torch.no_grad():
    np.save(sys.argv[3], net(torch.from_numpy(np.load(sys.argv[2]))).numpy())
print(extra["config.json"].decode())
"""


def fake_run(root, arch: str = "seed", epoch: int = 3, ema: bool = True, upsample: str = "deconv"):
    """A run folder holding one checkpoint as training would leave it: moved BatchNorm
    statistics, and EMA weights that differ from the raw generator's."""
    cfg = tiny_config(arch=arch, upsample=upsample)
    g, d = networks_for(cfg)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in g.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2, generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
        g_ema = copy.deepcopy(g)
        for p in g_ema.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    run = RunDir(root)
    run.write_config(cfg, None)
    save_checkpoint({"config": cfg.to_dict(), "epoch": epoch, "batch": 0, "step": 10 * epoch,
                     "generator": g.state_dict(), "discriminator": d.state_dict(),
                     "generator_ema": g_ema.state_dict() if ema else None},
                    run.checkpoints / checkpoint_name(epoch))
    return root


def served_images(run_dir, seeds=SEEDS) -> tuple[np.ndarray, np.ndarray]:
    """(noise, images) of each seed's face as the service draws it."""
    _, state = load_epoch(RunDir(run_dir).checkpoints, None, entries=SERVING_ENTRIES)
    g, _ = networks_from_checkpoint(state)
    noise = face_noise(seeds, g.nz)
    return noise.numpy(), run_generator(g, noise).numpy()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return fake_run(tmp_path_factory.mktemp("export") / "20260101-000000-abcdef")


def test_safetensors_holds_the_ema_weights_and_config_and_loads_without_project_code(run_dir, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "g.safetensors"
    done = export_run(RunDir(run_dir).checkpoints, None, "safetensors", out, job_id=run_dir.name)
    assert done.checkpoint.epoch == 3 and done.metadata["weights"] == "ema"

    loaded = json.loads(run_standalone(SAFETENSORS_SCRIPT, out, cwd=tmp_path))
    meta = loaded["meta"]
    assert {k: meta[k] for k in ("format", "job_id", "epoch", "arch", "nz", "ngf", "image_size", "weights")} == {
        "format": FORMAT, "job_id": run_dir.name, "epoch": "3", "arch": "seed", "nz": "100", "ngf": "8",
        "image_size": "96", "weights": "ema"}
    assert json.loads(meta["train_config"])["ngf"] == 8
    _, served = load_epoch(RunDir(run_dir).checkpoints, 3, entries=SERVING_ENTRIES)
    assert meta["checkpoint_checksum"] == generator_checksum(served) and meta["software"] == software()

    _, state = load_epoch(RunDir(run_dir).checkpoints, 3)
    ema = state["generator_ema"]
    assert loaded["shapes"] == {k: list(v.shape) for k, v in ema.items()}
    tensors = load_file(out)
    assert all(torch.equal(tensors[k], ema[k]) for k in ema)  # the EMA weights, not the raw ones
    assert not torch.equal(tensors["main.0.weight"], state["generator"]["main.0.weight"])


def test_a_generator_rebuilt_from_the_safetensors_metadata_draws_the_served_faces(run_dir, tmp_path):
    from safetensors import safe_open

    from model.networks import build_networks

    out = tmp_path / "g.safetensors"
    export_run(RunDir(run_dir).checkpoints, None, "safetensors", out, job_id="j")
    with safe_open(out, framework="pt") as f:
        meta = f.metadata()
        names = f.keys()  # a safe_open handle is not a dict
        weights = {k: f.get_tensor(k) for k in names}
    g, _ = build_networks(int(meta["nz"]), int(meta["ngf"]), 8, 0, meta["arch"])
    g.load_state_dict(weights)
    noise, expected = served_images(run_dir)
    with torch.no_grad():
        got = g.eval()(torch.from_numpy(noise)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("arch,upsample", [("seed", "deconv"), ("resnet", "deconv"), ("seed", "resize"),
                                           ("resnet", "resize-last"), ("seed", "resize-last-blur"),
                                           ("seed", "linear-last-blur"), ("seed", "learned-last-blur"),
                                           ("seed", "balanced-last-blur"), ("seed", "balanced-replicate-last")])
def test_onnx_runs_in_onnxruntime_alone_and_draws_the_served_faces(arch, upsample, tmp_path):
    run = fake_run(tmp_path / "run", arch=arch, upsample=upsample)
    out = tmp_path / "g.onnx"
    export_run(RunDir(run).checkpoints, 3, "onnx", out, job_id="20260101-000000-abcdef")
    noise, expected = served_images(run)
    np.save(tmp_path / "noise.npy", noise)

    info = json.loads(run_standalone(ORT_SCRIPT, out, tmp_path / "noise.npy", tmp_path / "images.npy",
                                     cwd=tmp_path))
    got = np.load(tmp_path / "images.npy")
    assert got.shape == (len(SEEDS), 3, 96, 96) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert info["input"] == ["noise", ["batch", 100, 1, 1], "tensor(float)"]
    assert info["output"] == ["images", ["batch", 3, 96, 96]]
    assert info["meta"]["arch"] == arch and info["meta"]["epoch"] == "3" and info["meta"]["weights"] == "ema"
    assert info["meta"]["upsample"] == upsample
    assert info["meta"]["job_id"] == "20260101-000000-abcdef" and info["meta"]["format"] == FORMAT


def test_torchscript_runs_with_torch_alone_and_draws_the_served_faces(run_dir, tmp_path):
    out = tmp_path / "g.pt"
    export_run(RunDir(run_dir).checkpoints, None, "torchscript", out, job_id=run_dir.name)
    noise, expected = served_images(run_dir)
    np.save(tmp_path / "noise.npy", noise)
    meta = json.loads(run_standalone(TORCHSCRIPT_SCRIPT, out, tmp_path / "noise.npy", tmp_path / "images.npy",
                                     cwd=tmp_path))
    np.testing.assert_allclose(np.load(tmp_path / "images.npy"), expected, atol=1e-5)
    assert meta["nz"] == "100" and meta["epoch"] == "3" and meta["job_id"] == run_dir.name


def test_a_run_without_ema_exports_its_generator(tmp_path):
    run = fake_run(tmp_path / "run", ema=False)
    done = export_run(RunDir(run).checkpoints, None, "safetensors", tmp_path / "g.safetensors", job_id="j")
    assert done.metadata["weights"] == "generator"


@pytest.mark.parametrize("fmt,module", [("onnx", "onnx"), ("safetensors", "safetensors.torch")])
def test_a_missing_format_library_says_what_to_install(run_dir, tmp_path, monkeypatch, fmt, module):
    monkeypatch.setitem(sys.modules, module, None)  # `import` of it now fails as if not installed
    with pytest.raises(MissingLibrary, match=r"pip install 'dcgan-faces\[export\]'"):
        export_run(RunDir(run_dir).checkpoints, None, fmt, tmp_path / "g", job_id="j")
    assert not (tmp_path / "g").exists()


def test_an_exporter_failure_is_one_line_naming_torch(run_dir, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("exporter went away\nwith a long story")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(ExportError) as err:
        export_run(RunDir(run_dir).checkpoints, None, "onnx", tmp_path / "g.onnx", job_id="j")
    assert str(err.value) == f"onnx export failed with torch {torch.__version__}: exporter went away"


def test_a_missing_epoch_names_the_ones_there_are(run_dir, tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint for epoch 9 .*available: 3"):
        export_run(RunDir(run_dir).checkpoints, 9, "onnx", tmp_path / "g.onnx", job_id="j")


def test_the_cli_exports_a_run(run_dir, tmp_path):
    out = tmp_path / "sub" / "g.onnx"
    r = subprocess.run([sys.executable, "-m", "model", "export", "--run", str(run_dir), "--format", "onnx",
                        "--out", str(out)], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert "onnx generator (ema weights)" in r.stdout and out.stat().st_size > 0


@pytest.mark.parametrize("args,words", [
    (["export", "--run", "{tmp}/missing", "--format", "onnx", "--out", "{tmp}/g.onnx"], "not a run directory"),
    (["export", "--run", "{run}", "--epoch", "9", "--format", "onnx", "--out", "{tmp}/g.onnx"],
     "no checkpoint for epoch 9"),
    (["export", "--run", "{run}", "--format", "pickle", "--out", "{tmp}/g"], "invalid choice: 'pickle'"),
])
def test_cli_export_errors_are_one_line(run_dir, tmp_path, capsys, args, words):
    try:
        code = main([a.format(tmp=tmp_path, run=run_dir) for a in args])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and words in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_importing_the_engine_and_the_app_loads_no_export_or_tensorboard_library(tmp_path):
    code = ("import sys, model.cli, model.export, model.train, app.main\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('onnx', 'onnxruntime', 'safetensors', 'tensorboard') or m.startswith('torch.utils.tensorboard')))")
    env = {**os.environ, "RUNS_DIR": str(tmp_path / "runs"), "DATA_ROOT": str(tmp_path / "data")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, cwd=tmp_path,
                       env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_the_export_command_has_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["export", "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and "--format {safetensors,onnx,torchscript}" in out and "--out" in out


def test_an_export_carries_its_epochs_swd_and_copy_rate_when_measured(run_dir, tmp_path):
    from model.checkpoint import CheckpointRef
    from model.export import quality_metadata
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(
        '{"kind":"epoch","epoch":2,"step":4,"swd":12.5,"copy_rate":0.0625,"copy_distance":80.0}\n'
        '{"kind":"epoch","epoch":3,"step":6,"swd":11.0,"copy_rate":9,"copy_distance":80.0}\n'
        '{"kind":"epoch","epoch":4,"step":8,"copy_rate":"all"}\n')
    ref = lambda e, b=0: CheckpointRef(e, b, run / "checkpoints" / f"epoch-{e:04d}.pt")  # noqa: E731
    assert json.loads(quality_metadata(run, ref(2))["quality"]) == {"swd": 12.5, "copy_rate": 0.0625,
                                                                     "copy_distance": 80.0}
    assert json.loads(quality_metadata(run, ref(3))["quality"]) == {"swd": 11.0, "copy_distance": 80.0}
    assert quality_metadata(run, ref(4)) == {} and quality_metadata(run, ref(2, 1)) == {}
    done = export_run(RunDir(run_dir).checkpoints, None, "torchscript", tmp_path / "g.pt", job_id=run_dir.name)
    assert "quality" not in done.metadata  # that run logged no measurement
