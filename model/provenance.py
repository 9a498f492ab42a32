"""Where an image came from, written into the PNG files the service, the CLI and training write.

Each PNG carries text chunks (tEXt; iTXt for text outside Latin-1) that Pillow reads back as
`Image.open(path).text`: the project and its version (`Software`), the checkpoint (`job`,
`epoch`, `checkpoint`, and `checkpoint_checksum`: the CRC32 content checksum of the generator
weights it was drawn with, as model/checkpoint.py computes it), the seed and the face indices,
and every sampling option. Nothing in them changes from one request to the next (no times, no
hosts), so the same query on the same checkpoint still gives the same bytes.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

PROJECT = "dcgan-faces"


@functools.cache
def project_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(PROJECT)
    except PackageNotFoundError:  # pragma: no cover - running from a checkout that is not installed
        return "unknown"


def software() -> str:
    return f"{PROJECT} {project_version()}"


def generator_checksum(state: Mapping[str, Any]) -> str:
    """The content checksum of the generator weights a loaded checkpoint samples with (the EMA
    weights when the job kept them), as `crc32:XXXXXXXX`."""
    from model.checkpoint import content_checksum
    weights = state.get("generator_ema") or state["generator"]
    return f"crc32:{content_checksum(weights):08x}"


def faces_text(indices: range) -> str:
    """`0-63` for faces 0 to 63, `5` for face 5 alone."""
    if len(indices) == 1:
        return str(indices[0])
    return f"{indices[0]}-{indices[-1]}"


def grid_faces(n: int, best_of: int | None) -> str:
    """The faces of a grid: `0-15`, or with best_of `best 16 of 0-255 by D` (D's top n, best first)."""
    return faces_text(range(n)) if not best_of else f"best {n} of {faces_text(range(best_of))} by D"


def _value(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def provenance(job: str | None, epoch: int | None, checkpoint: str | None, checksum: str | None,
               kind: str, **options: Any) -> dict[str, str]:
    """The text chunks of one image, in a fixed order: who made it, from which checkpoint,
    what (`kind`: grid, face, strip, variations, snapshot) and with which options."""
    text = {"Software": software(), "job": _value(job), "epoch": _value(epoch),
            "checkpoint": _value(checkpoint), "checkpoint_checksum": _value(checksum), "kind": kind}
    text.update((k, _value(v)) for k, v in options.items())
    return text
