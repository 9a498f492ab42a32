"""A checkpoint's latent directions (model/directions.py) as the app serves them, and the
`edit=K:AMOUNT` query parameter of the image routes.

Computed once per generator: the first request for a checkpoint computes its directions as a
render (app/render.py: at most GENERATE_CONCURRENCY at once, GENERATE_QUEUE waiting, beyond that a
503; concurrent first requests share the one computation) and one computation runs at a time in
the process. The result is written atomically to CACHE_DIR/directions/<weights checksum>.json:
keyed by the weights' content checksum, so a restart, another app process, or a copy of the same
weights under another job finds it, and a checkpoint rewritten with new weights never does. The
cache folder rather than the job's folder, because the app only reads runs (the worker owns them)
and the cache folder is already the place for derived, rebuildable files. A cache file is read
bounded and checked in full; one that is damaged, foreign or hostile is computed again and
replaced, never trusted and never a 500. The newest few are also kept in memory.
"""
from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Query
from fastapi.exceptions import RequestValidationError

from app.registry import Busy, Loaded, torch_generator
from app.render import Edits, Renderer, etag
from model.directions import (
    EDIT_PATTERN,
    MAX_AMOUNT,
    MAX_EDITS,
    MAX_FILE_BYTES,
    Directions,
    DirectionsError,
    EditError,
    check_edits,
    compute_directions,
    expected_count,
    parse_edits,
)
from model.fsutil import atomic_write_bytes, read_bounded

log = logging.getLogger(__name__)
MAX_KEPT = 8  # directions kept in memory (each at most 16 x 1024 floats)
_CHECKSUM = re.compile(r"crc32:[0-9a-f]{8}")
_compute_lock = threading.Lock()

Edit = Annotated[str | None, Query(
    max_length=200,
    # In the schema only: parse_edits refuses exactly what it does not match, with a message.
    json_schema_extra={"pattern": EDIT_PATTERN},
    description=f"move every face along the model's latent directions (GET /directions): "
                f"DIRECTION:AMOUNT pairs, comma separated, e.g. 0:1.5,3:-2; AMOUNT in standard "
                f"deviations, -{MAX_AMOUNT:g} to {MAX_AMOUNT:g}, 0 is the plain face; at most {MAX_EDITS} "
                f"edits, each direction once. A well-formed edit naming a direction the model does "
                f"not have is a 422.")]


@dataclass(frozen=True)
class DirectionsQuery:
    """The renderer's cache key for a model's directions (etag: the model's identity with it)."""


def _refuse(text: str, exc: EditError) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("query", "edit"), "msg": str(exc),
                                    "input": text}])


def parse_edit_query(text: str | None) -> Edits:
    """The edits of an `edit` query parameter (syntax only), or a 422 naming the problem."""
    if text is None:
        return ()
    try:
        return parse_edits(text)
    except EditError as exc:
        raise _refuse(text, exc) from None


def _path(cache_dir: Path, checksum: str | None) -> Path | None:
    if checksum is None or not _CHECKSUM.fullmatch(checksum):
        return None
    return Path(cache_dir) / "directions" / f"{checksum.replace(':', '-')}.json"


def _read_cached(path: Path | None, checksum: str | None, nz: int) -> Directions | None:
    if path is None:
        return None
    try:
        return Directions.from_json(read_bounded(path, MAX_FILE_BYTES), checksum, nz)
    except FileNotFoundError:
        return None
    except (OSError, DirectionsError) as exc:
        log.warning("directions cache %s is unusable (%s); computing them again", path.name, exc)
        return None


def _load_or_compute(model: Loaded, cache_dir: Path) -> bytes:
    """The model's directions as JSON: from the cache folder, else computed (on the CPU, from
    the checkpoint's torch weights whatever backend serves them) and written there. Blocking."""
    nz = model.g.nz
    path = _path(cache_dir, model.checksum)
    found = _read_cached(path, model.checksum, nz)
    if found is not None:
        return found.to_json()
    with _compute_lock:  # one computation at a time: its memory is bounded, not multiplied
        found = _read_cached(path, model.checksum, nz)  # written meanwhile (same weights elsewhere)
        if found is not None:
            return found.to_json()
        # Read again onto the CPU whatever serves it: the same directions on every device.
        g, checksum = torch_generator(model, reuse=False)
        directions = compute_directions(g, checksum)
        body = directions.to_json()
        if path is not None:
            try:
                atomic_write_bytes(path, body)
            except OSError as exc:  # a read-only cache folder: serve them anyway, compute again next time
                log.warning("could not write directions cache %s: %s", path, exc)
        return body


class DirectionsCache:
    """One app's directions: the newest MAX_KEPT in memory, the rest in the cache folder."""

    def __init__(self, cache_dir: Path, renderer: Renderer) -> None:
        self.cache_dir = Path(cache_dir)
        self.renderer = renderer
        self._kept: OrderedDict[str, Directions] = OrderedDict()  # model identity -> its directions

    async def get(self, model: Loaded) -> Directions:
        """The directions of `model`: kept in memory, else read or computed as a render (Busy: 503).
        Runs on the event loop (which is what keeps `_kept` consistent without a lock)."""
        kept = self._kept.get(model.identity)
        if kept is not None:
            self._kept.move_to_end(model.identity)
            return kept
        try:
            body, _ = await self.renderer.get(etag(model, DirectionsQuery()),
                                              lambda: _load_or_compute(model, self.cache_dir))
        except Busy as exc:
            raise Busy(str(exc) or "busy computing latent directions; retry in a second") from None
        found = Directions.from_json(body, model.checksum, model.g.nz)
        self._kept[model.identity] = found
        while len(self._kept) > MAX_KEPT:
            self._kept.popitem(last=False)
        return found

    async def for_edits(self, model: Loaded, text: str | None, edits: Edits) -> tuple[Edits, Directions | None]:
        """(the edits that change something, the model's directions when they are needed): a 422
        for a direction the model does not have; edits of amount 0 are dropped, so such a query
        is the plain one (same ETag, same bytes)."""
        try:
            edits = check_edits(edits, expected_count(model.g.nz))
        except EditError as exc:
            raise _refuse(text or "", exc) from None
        return edits, (await self.get(model) if edits else None)
