"""What runs the served generator's forward pass: torch (any device) or onnxruntime (CPU).

benchmarks/backend_bench.py measures both on the same G (BENCHMARKS.md, "Serving backends"): on
a CPU onnxruntime is the faster at small batches (a single face: about 2.4x), and as fast at 64;
on CUDA torch is the one to use. `RENDER_BACKEND=auto` picks onnxruntime on the CPU when its
packages are installed, torch otherwise; `torch` or `onnxruntime` forces one. The choice is made
once, when the app starts (resolve_backend), never per request.

Rows stay independent in both (face i of a seed is the same face in any batch), and the two
agree to within 1e-5 on images in [-1, 1] (tests/model/test_backends.py): at most one level of
8-bit colour apart, which is why the backend is part of every ETag.
"""
from __future__ import annotations

import importlib.util
import io
import warnings

import torch
from torch import nn

BACKENDS = ("auto", "torch", "onnxruntime")
ONNX_OPSET = 17  # run by onnxruntime >= 1.14 and most other runtimes


class BackendError(ValueError):
    """A RENDER_BACKEND this machine cannot run; the message says what to change."""


def onnxruntime_available() -> bool:
    """Whether both packages are installed (found, not imported: the app loads them only with
    its first model)."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def resolve_backend(name: str, device: torch.device) -> str:
    """'torch' or 'onnxruntime' for RENDER_BACKEND `name` on `device`."""
    if name not in BACKENDS:
        raise BackendError(f"RENDER_BACKEND must be one of {', '.join(BACKENDS)}, not {name!r}")
    if name == "torch":
        return "torch"
    if device.type != "cpu":
        if name == "onnxruntime":
            raise BackendError(f"RENDER_BACKEND=onnxruntime renders on the CPU, and DEVICE is {device}: "
                               "set RENDER_BACKEND=torch (or auto) to render on the GPU")
        return "torch"
    if onnxruntime_available():
        return "onnxruntime"
    if name == "onnxruntime":
        raise BackendError("RENDER_BACKEND=onnxruntime needs the onnx and onnxruntime packages: "
                           "pip install 'dcgan-faces[service]'")
    return "torch"


def onnx_bytes(g: nn.Module) -> bytes:
    """G as an ONNX graph: input `noise` (N, nz, 1, 1) float32, output `images` (N, 3, H, W).
    torch's TorchScript-based exporter (dynamo=False) needs only the `onnx` package and takes
    about a second; the torch.export-based one also needs `onnxscript` and is ~15x slower here."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter announces its deprecation
        torch.onnx.export(g, (torch.zeros(2, g.nz, 1, 1),), buf, dynamo=False, opset_version=ONNX_OPSET,
                          input_names=["noise"], output_names=["images"],
                          dynamic_axes={"noise": {0: "batch"}, "images": {0: "batch"}})
    return buf.getvalue()


class OnnxGenerator:
    """A generator's forward pass in onnxruntime, called like the eval-mode torch module it was
    made from (CPU float32 noise in, CPU images out). Sessions are safe to run from several
    threads at once; each run uses `threads` threads, which wait without spinning (the CPU may be
    training a job at the same time)."""

    device = torch.device("cpu")

    def __init__(self, g: nn.Module, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.nz = g.nz
        plain = g.to("cpu", memory_format=torch.contiguous_format)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        # No arena: it would keep each session's largest batch's buffers for good (up to 3 models
        # are held); plain allocations measured as fast here (BENCHMARKS.md, serving backends).
        options.enable_cpu_mem_arena = False
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(onnx_bytes(plain), options, providers=["CPUExecutionProvider"])

    def __call__(self, noise: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {"noise": noise.detach().float().cpu().contiguous().numpy()})[0]
        return torch.from_numpy(out)


def serving_generator(g: nn.Module, backend: str) -> nn.Module | OnnxGenerator:
    """The eval-mode `g` as `backend` runs it."""
    return OnnxGenerator(g) if backend == "onnxruntime" else g
