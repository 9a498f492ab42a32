"""The serving backends: chosen once from RENDER_BACKEND and the device, and agreeing with each
other to the stated tolerance, row by row, whatever the batch."""
from __future__ import annotations

import pytest
import torch

from model import backends
from model.backends import BackendError, OnnxGenerator, resolve_backend
from model.config import TrainConfig
from model.networks import networks_for
from model.sampling import generate, run_generator, sample_noise

CPU, CUDA = torch.device("cpu"), torch.device("cuda:0")


def test_auto_is_onnxruntime_on_the_cpu_and_torch_on_a_gpu():
    assert resolve_backend("auto", CPU) == "onnxruntime"
    assert resolve_backend("auto", CUDA) == "torch"
    assert resolve_backend("torch", CPU) == "torch" and resolve_backend("onnxruntime", CPU) == "onnxruntime"


def test_onnxruntime_on_a_gpu_is_refused_saying_what_to_set():
    with pytest.raises(BackendError, match="RENDER_BACKEND=torch"):
        resolve_backend("onnxruntime", CUDA)


def test_without_onnxruntime_auto_falls_back_to_torch_and_a_forced_one_says_what_to_install(monkeypatch):
    monkeypatch.setattr(backends, "onnxruntime_available", lambda: False)
    assert resolve_backend("auto", CPU) == "torch"
    with pytest.raises(BackendError, match="pip install"):
        resolve_backend("onnxruntime", CPU)


def test_an_unknown_backend_is_refused():
    with pytest.raises(BackendError, match="auto, torch, onnxruntime"):
        resolve_backend("tensorrt", CPU)


@pytest.mark.parametrize("arch,upsample", [("seed", "deconv"), ("resnet", "deconv"), ("seed", "even"),
                                           ("seed", "resize"), ("seed", "resize-last"),
                                           ("seed", "resize-last-blur"), ("resnet", "linear-last-blur"),
                                           ("seed", "learned-last-blur"), ("seed", "balanced-replicate-last")])
def test_onnxruntime_agrees_with_torch_within_1e_5_and_every_row_is_independent_of_its_batch(arch, upsample):
    torch.manual_seed(0)
    g, _ = networks_for(TrainConfig(ngf=16, ndf=16, arch=arch, upsample=upsample))
    g.eval().requires_grad_(False)
    served = OnnxGenerator(g)
    z = sample_noise(3, range(40), g.nz)
    full = run_generator(served, z)
    assert (full - run_generator(g, z)).abs().max() <= 1e-5
    for start, stop in [(0, 1), (0, 7), (5, 6), (13, 40)]:
        assert torch.equal(run_generator(served, z[start:stop]), full[start:stop])
    # the sampling functions take it as they take the torch module
    assert torch.equal(generate(served, 3, 4), full[:4])


def test_best_of_ranks_an_onnxruntime_generator_s_faces_as_it_ranks_torch_s():
    from model.sampling import best_of
    torch.manual_seed(0)
    g, d = networks_for(TrainConfig(ngf=16, ndf=16))
    g.eval().requires_grad_(False)
    d.eval().requires_grad_(False)
    by_ort, by_torch = best_of(OnnxGenerator(g), d, 5, 3, 12), best_of(g, d, 5, 3, 12)
    assert (by_ort - by_torch).abs().max() <= 1e-5
