"""A run's serving generator as one standalone file: safetensors, ONNX or TorchScript.

The exported net is the one the service samples with (`networks_from_checkpoint`: EMA weights
when the job kept them, any architecture), and the file carries its config as string metadata
(safetensors `__metadata__`, ONNX `metadata_props`, TorchScript `config.json` extra file), so
the weights load, and the ONNX/TorchScript nets run, without this project.

The format libraries are optional (`pip install 'dcgan-faces[export]'`) and imported only here,
when an export is asked for.
"""
from __future__ import annotations

import copy
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from model.backends import onnx_bytes
from model.checkpoint import SERVING_ENTRIES, CheckpointError, CheckpointRef, load_epoch
from model.config import TrainConfig
from model.fsutil import atomic_open
from model.provenance import generator_checksum, software
from model.rundir import RunDir
from model.sampling import networks_from_checkpoint

FORMAT = "dcgan-faces-generator/1"
# format -> file suffix
FORMATS = {"safetensors": ".safetensors", "onnx": ".onnx", "torchscript": ".pt"}
INSTALL_HINT = "pip install 'dcgan-faces[export]'"

TORCHSCRIPT_CONFIG = "config.json"  # the `_extra_files` entry holding the metadata


class ExportError(Exception):
    """An export that cannot be made; the message says why and what to do."""


class MissingLibrary(ExportError):
    """The format's library is not installed."""


@dataclass(frozen=True)
class Exported:
    path: Path
    format: str
    checkpoint: CheckpointRef
    metadata: dict[str, str]


def generator_metadata(state: dict[str, Any], ref: CheckpointRef, job_id: str) -> dict[str, str]:
    """What a user needs to rebuild, feed and read the generator, as strings."""
    cfg = TrainConfig.from_dict(state["config"])
    return {
        "format": FORMAT,
        "job_id": job_id,
        "epoch": str(ref.epoch),
        "step": str(int(state["step"])),
        "checkpoint": ref.name,
        "arch": cfg.arch,
        "upsample": cfg.upsample,
        "nz": str(cfg.nz),
        "ngf": str(cfg.ngf),
        "image_size": str(cfg.image_size),
        "weights": "ema" if state.get("generator_ema") is not None else "generator",
        "input": "noise: float32 (N, nz, 1, 1), standard normal",
        "output": "images: float32 (N, 3, image_size, image_size), RGB in [-1, 1]",
        "noise": "face i of seed s: torch.Generator().manual_seed((s << 24) | i), then torch.randn(nz)",
        "train_config": json.dumps(cfg.to_dict(), sort_keys=True),
        "checkpoint_checksum": generator_checksum(state),  # as the PNGs it draws say (model/provenance.py)
        "software": software(),
    }


def data_metadata(run_root: Path) -> dict[str, str]:
    """The model card's data part: the decoded dataset's fingerprint and counts (data.json)."""
    try:
        data = json.loads((run_root / "data.json").read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    keep = {k: data[k] for k in ("fingerprint", "images", "files_found", "skipped", "skipped_by_reason") if k in data}
    return {"training_data": json.dumps(keep, sort_keys=True)} if keep else {}


def quality_metadata(run_root: Path, ref: CheckpointRef) -> dict[str, str]:
    """The model card's quality part for an end-of-epoch checkpoint: its epoch's SWD and copy
    rate (metrics.jsonl), where they were measured."""
    if not ref.ends_epoch:
        return {}
    found: dict[str, float] = {}
    for row in RunDir(run_root).read_metrics(max_rows=1):  # thinning keeps every measured row
        if row.get("kind") == "epoch" and row.get("epoch") == ref.epoch:
            found = {k: row[k] for k in ("swd", "swd_ema", "copy_rate", "copy_distance")
                     if row.get(k) is not None}
    if not 0 <= found.get("copy_rate", 0) <= 1:
        found.pop("copy_rate")
    return {"quality": json.dumps(found, sort_keys=True)} if found else {}


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _plain(g: nn.Module) -> nn.Module:
    """A CPU, eval-mode, contiguous-memory copy (files store plain row-major tensors)."""
    return copy.deepcopy(g).cpu().to(memory_format=torch.contiguous_format).eval().requires_grad_(False)


def _safetensors_bytes(g: nn.Module, meta: dict[str, str]) -> bytes:
    try:
        from safetensors.torch import save
    except ImportError:
        raise MissingLibrary(f"safetensors export needs the safetensors package: {INSTALL_HINT}") from None
    tensors = {k: v.detach().contiguous() for k, v in g.state_dict().items()}
    return save(tensors, metadata=meta)


def _onnx_bytes(g: nn.Module, meta: dict[str, str]) -> bytes:
    try:
        import onnx
    except ImportError:
        raise MissingLibrary(f"ONNX export needs the onnx package: {INSTALL_HINT}") from None
    model = onnx.load_model_from_string(onnx_bytes(g))
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.doc_string = f"dcgan-faces generator, job {meta['job_id']} epoch {meta['epoch']}"
    return model.SerializeToString()


def _torchscript_bytes(g: nn.Module, meta: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export
        traced = torch.jit.trace(g, torch.zeros(2, g.nz, 1, 1))
        torch.jit.save(traced, buf, _extra_files={TORCHSCRIPT_CONFIG: json.dumps(meta, sort_keys=True)})
    return buf.getvalue()


_WRITERS = {"safetensors": _safetensors_bytes, "onnx": _onnx_bytes, "torchscript": _torchscript_bytes}


def export_generator(g: nn.Module, meta: dict[str, str], fmt: str, out: Path) -> None:
    """Write generator `g` with metadata `meta` to `out` in format `fmt` (atomically)."""
    if fmt not in _WRITERS:
        raise ExportError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    try:
        data = _WRITERS[fmt](_plain(g), meta)
    except ExportError:
        raise
    except Exception as exc:  # an exporter that changed under us: say so, in one line
        raise ExportError(f"{fmt} export failed with torch {torch.__version__}: {_first_line(exc)}") from None
    with atomic_open(Path(out)) as f:
        f.write(data)


def export_run(checkpoints: Path, epoch: int | None, fmt: str, out: Path, job_id: str) -> Exported:
    """Export the serving generator of the checkpoint for `epoch` (None: the newest loadable one)
    in `checkpoints`. CheckpointError when there is no such checkpoint or it does not load."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    ref, state = load_epoch(checkpoints, epoch, entries=SERVING_ENTRIES)
    try:
        g, _ = networks_from_checkpoint(state, "cpu")
        meta = {**generator_metadata(state, ref, job_id), **data_metadata(Path(checkpoints).parent)}
    except Exception as exc:  # weights that do not fit its config, a config from a future version...
        raise CheckpointError(f"{ref.name}: unusable checkpoint ({_first_line(exc)})") from None
    meta.update(quality_metadata(Path(checkpoints).parent, ref))
    export_generator(g, meta, fmt, out)
    return Exported(Path(out), fmt, ref, meta)
