"""The device a run resolves to, the plan made from it once, and the GPU's paths taken on the CPU."""
import ast
import dataclasses
from pathlib import Path

import pytest
import torch

from model.batches import Batches
from model.checkpoint import load_checkpoint
from model.data import load_dataset
from model.plan import plan_for
from model.rundir import RunDir
from model.runtime import resolve_device
from model.train import Trainer, train
from tests.helpers import assert_same_weights, tiny_config

ROOT = Path(__file__).resolve().parents[2]
CPU = torch.device("cpu")


@pytest.fixture
def one_cuda_gpu(monkeypatch):
    """What torch reports on a machine with one GPU (nothing is allocated on it)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


@pytest.mark.parametrize("asked", ["cuda", "auto", "cuda:0"])
def test_cuda_resolves_to_the_indexed_device_its_tensors_report(one_cuda_gpu, asked):
    # A bare torch.device("cuda") is not equal to the cuda:0 that a tensor on it reports: the
    # first GPU run indexed a GPU-resident dataset with CPU indices because of it.
    dev = resolve_device(asked)
    assert (dev.type, dev.index) == ("cuda", 0)


def test_a_gpu_that_is_not_there_is_refused(one_cuda_gpu):
    from model.config import ConfigError
    with pytest.raises(ConfigError, match="has 1 CUDA GPU"):
        resolve_device("cuda:3")
    with pytest.raises(ConfigError, match="unsupported device"):
        resolve_device("tpu")


def test_the_plan_decides_each_cuda_path_once(one_cuda_gpu):
    cfg = tiny_config()
    gpu, cpu = plan_for(cfg, torch.device("cuda", 0)), plan_for(cfg, CPU)
    assert gpu.autocast is torch.bfloat16 and cpu.autocast is None  # precision "auto"
    assert gpu.data_on_device is None and cpu.data_on_device is False  # None: when it fits
    assert gpu.augment_channels_last and not cpu.augment_channels_last
    assert gpu.fused_adam and not cpu.fused_adam and cpu.tune_host_heap and not gpu.tune_host_heap
    compiled = plan_for(tiny_config(compile=True), torch.device("cuda", 0))
    assert compiled.compile_backend == "inductor" and not compiled.channels_last  # pytorch#171622
    assert plan_for(tiny_config(precision="bf16"), CPU).autocast is torch.bfloat16
    assert plan_for(tiny_config(precision="fp32"), torch.device("cuda", 0)).autocast is None


def test_batches_gathered_on_the_device_equal_those_gathered_on_the_host(image_folder):
    images = load_dataset(image_folder, 96).images
    host, resident = Batches(images, CPU, on_device=False), Batches(images, CPU, on_device=True)
    assert resident.on_device and not host.on_device and resident.store.shape == (96, 96, 96, 3)
    order = torch.randperm(96, generator=torch.Generator().manual_seed(3))
    for b in (host, resident):
        x = b.get(b.order(order)[16:32])
        assert x.shape == (16, 3, 96, 96) and x.dtype == torch.float32
        assert x.is_contiguous(memory_format=torch.channels_last)
    expected = torch.from_numpy(images[order[16:32].numpy()]).float().mul(1 / 127.5).sub(1)
    assert torch.equal(host.get(order[16:32]), expected)
    assert torch.equal(resident.get(resident.order(order)[16:32]), expected)
    for on_device in (False, True):  # compiled nets run NCHW (model/plan.py): so do their batches
        nchw = Batches(images, CPU, on_device=on_device, channels_last=False)
        x = nchw.get(nchw.order(order)[16:32])
        assert x.is_contiguous() and torch.equal(x, expected)


def _trained(image_folder, tmp_path, name, **plan_changes):
    cfg = tiny_config(epochs=1, diffaugment="color,translation,cutout")
    trainer = Trainer(cfg, RunDir(tmp_path / name), load_dataset(image_folder, 96),
                      dataclasses.replace(plan_for(cfg, CPU), **plan_changes))
    assert not trainer.run(lambda: False)
    return trainer


def test_training_with_the_dataset_on_the_device_matches_the_host_path(image_folder, tmp_path):
    host = _trained(image_folder, tmp_path, "host")
    resident = _trained(image_folder, tmp_path, "resident", data_on_device=True)
    assert resident.batches.on_device and resident.step == host.step == 6
    assert_same_weights(host.g.state_dict(), resident.g.state_dict())
    assert_same_weights(host.d.state_dict(), resident.d.state_dict())


def test_augmenting_in_channels_last_trains_the_same_nets(image_folder, tmp_path):
    nchw = _trained(image_folder, tmp_path, "nchw")
    nhwc = _trained(image_folder, tmp_path, "nhwc", augment_channels_last=True)
    for name, a in nchw.g.state_dict().items():  # reductions may sum in another order: not bit-exact
        torch.testing.assert_close(nhwc.g.state_dict()[name], a, rtol=1e-4, atol=1e-5)


def test_bf16_trains_resumes_and_generates_on_the_cpu(image_folder, tmp_path):
    cfg = tiny_config(epochs=2, precision="bf16")
    train(cfg, tmp_path / "straight", data_dir=image_folder)
    train(tiny_config(epochs=1, precision="bf16"), tmp_path / "resumed", data_dir=image_folder)
    train(cfg, tmp_path / "resumed", data_dir=image_folder)
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "epoch-0002.pt")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "epoch-0002.pt")
    assert_same_weights(a["generator"], b["generator"])
    fp32 = tmp_path / "fp32"
    train(tiny_config(epochs=2, precision="fp32"), fp32, data_dir=image_folder)
    c = load_checkpoint(fp32 / "checkpoints" / "epoch-0002.pt")
    assert not torch.equal(a["generator"]["main.0.weight"], c["generator"]["main.0.weight"])
    assert a["generator"]["main.0.weight"].dtype == torch.float32  # the weights stay fp32
    from model.sampling import generate, networks_from_checkpoint
    images = generate(networks_from_checkpoint(a)[0], 42, 4)
    assert images.shape == (4, 3, 96, 96) and images.dtype == torch.float32 and images.isfinite().all()


def test_power_iteration_runs_once_per_d_step(image_folder, tmp_path):
    from model.networks import is_spectral_norm
    cfg = tiny_config(spectral_norm=True, g_every=1)
    trainer = Trainer(cfg, RunDir(tmp_path / "sn"), load_dataset(image_folder, 96), plan_for(cfg, CPU))
    sn = [m for m in trainer.d.modules() if is_spectral_norm(m)]
    calls = []
    for m in sn:
        m._power_method = lambda *a, m=m, **k: calls.append(m)
    trainer.d_step(trainer.batches.get(torch.arange(16)))
    assert len(calls) == len(sn) == 5  # real and fake share one estimate
    trainer.g_step()
    assert len(calls) == 5 and all(m.training for m in sn)  # G's step uses it as it is


DEVICE_WORDS = ("device", "dev")


def _looks_like_a_device(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr == "device"
    if isinstance(node, ast.Name):
        return node.id in DEVICE_WORDS or node.id.endswith("_device")
    if isinstance(node, ast.Call):
        f = node.func
        return isinstance(f, ast.Attribute) and f.attr == "device" or isinstance(f, ast.Name) and f.id == "device"
    return False


def test_no_code_compares_torch_devices():
    """`torch.device("cuda") != torch.device("cuda", 0)`: a device comparison is how the first GPU
    run crashed. Compare `.type`, or decide once in model/plan.py."""
    found = []
    for package in ("model", "worker", "app"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Compare) and any(
                        isinstance(op, (ast.Eq, ast.NotEq, ast.Is, ast.IsNot)) for op in node.ops):
                    sides = (node.left, *node.comparators)
                    if any(_looks_like_a_device(x) for x in sides) and not any(
                            isinstance(x, ast.Constant) and x.value is None for x in sides):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, f"device objects compared at {', '.join(found)}"


def test_the_device_check_catches_what_crashed():
    tree = ast.parse("if self.store.device == self.device:\n    pass\nok = x.device.type == 'cuda'\n")
    compares = [n for n in ast.walk(tree) if isinstance(n, ast.Compare)]
    assert [any(_looks_like_a_device(x) for x in (c.left, *c.comparators)) for c in compares] == [True, False]
