"""Where and how a process runs torch: device choice, host allocator, determinism.

Kept apart from the training loop so that the app (which only samples) and the CLI can pick a
device without importing `model.train`.
"""
from __future__ import annotations

import os

import torch

from model.config import ConfigError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The device a process computes on, always with its index on CUDA (`cuda:0`, never a bare
    `cuda`): tensors report an indexed device, so anything compared with or derived from this
    names the same device the tensors do."""
    name = str(device)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unsupported device {device!r}; use auto, cpu or cuda") from None
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type != "cuda":
        raise ConfigError(f"unsupported device {device!r}; use auto, cpu or cuda")
    if not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but PyTorch sees no CUDA GPU; use --device cpu or auto")
    index = torch.cuda.current_device() if dev.index is None else dev.index
    if not 0 <= index < torch.cuda.device_count():
        raise ConfigError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return torch.device("cuda", index)


_ALLOCATOR_TUNED = False


def tune_host_allocator() -> bool:
    """On glibc, keep freed activation buffers in the heap between steps.

    A CPU step allocates and frees the same few-MB activations over and over; by default glibc
    serves each one with a fresh mmap and hands it back with munmap, so every step page-faults
    its activations in again. Raising the mmap threshold to 64 MB (and keeping 256 MB of free
    heap before trimming) removes that churn: measured 2-7% per CPU step (BENCHMARKS.md). The
    setting is process-wide and only ever raised once; anything that is not glibc is left alone.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    try:
        libc = _libc()
        mb = 1 << 20
        # mallopt params: M_TRIM_THRESHOLD=-1, M_TOP_PAD=-2, M_MMAP_THRESHOLD=-3
        ok = all(libc.mallopt(k, v) == 1 for k, v in ((-3, 64 * mb), (-1, 256 * mb), (-2, 64 * mb)))
    except (OSError, AttributeError):
        ok = False
    _ALLOCATOR_TUNED = ok
    return ok


def _libc():
    import ctypes
    return ctypes.CDLL("libc.so.6")


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """On glibc, let all threads share at most `arenas` malloc arenas (default: 8 per core).

    A server runs torch from many threads (a thread pool per request kind); each thread's
    arena keeps the memory its last tensors used, so RSS grows with the number of threads that
    ever loaded or rendered a model. Measured for the app: 48 concurrent loads and renders over
    8 seed-sized checkpoints peaked at +525 MB with the default and +247 MB with 2 arenas
    (BENCHMARKS.md). Affects arenas created after the call; anything not glibc is left alone.
    """
    try:
        return _libc().mallopt(-8, arenas) == 1  # M_ARENA_MAX
    except (OSError, AttributeError):
        return False


def release_free_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's malloc_trim), after a large
    transient allocation such as loading a checkpoint."""
    try:
        _libc().malloc_trim(0)
    except (OSError, AttributeError):
        pass


def set_determinism(deterministic: bool, device: torch.device) -> None:
    """cuDNN autotuning and TF32 for speed, or deterministic kernels for bit-exact CUDA reruns."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cuda.matmul.allow_tf32 = not deterministic
        torch.backends.cudnn.allow_tf32 = not deterministic
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
