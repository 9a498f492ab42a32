"""Seed lists as users write them: `0-9,42` is seeds 0 to 9 inclusive, then 42 (stylegan's
`--seeds` syntax). The CLI's bulk mode and GET /faces.zip both parse with `parse_seeds`."""
from __future__ import annotations

import re

MAX_SEED = 2**32 - 1
MAX_SEEDS = 1_000_000  # the default cap: a typo like 0-4000000000 is refused, not rendered
_NUMBER = r"[0-9]{1,10}"
# The whole syntax, for the HTTP schema: what matches may still be refused (a reversed range, a
# seed past MAX_SEED, too many seeds), what does not match is always refused.
SEEDS_PATTERN = rf"^{_NUMBER}(-{_NUMBER})?(,{_NUMBER}(-{_NUMBER})?)*$"
_ITEM = re.compile(rf"({_NUMBER})(?:-({_NUMBER}))?")


class SeedsError(ValueError):
    """A seed list that cannot be used; the message says which part and why."""


def _seed(text: str) -> int:
    value = int(text)
    if value > MAX_SEED:
        raise SeedsError(f"seed {value} is out of range 0..{MAX_SEED}")
    return value


def parse_seeds(text: str, limit: int = MAX_SEEDS) -> list[int]:
    """The seeds `text` names, in the order given, each once (`0-3,2,9` is 0, 1, 2, 3, 9).

    Raises SeedsError for an empty list, an item that is not N or A-B, a reversed range, a seed
    past 2^32-1, or more than `limit` distinct seeds (checked before any range is expanded)."""
    items = [item.strip() for item in text.split(",")]
    if items == [""]:
        raise SeedsError("no seeds given; write e.g. 0-9,42")
    seen: dict[int, None] = {}
    for item in items:
        m = _ITEM.fullmatch(item)
        if m is None:
            raise SeedsError(f"{item!r} is neither a seed nor a range A-B (write e.g. 0-9,42)")
        first = _seed(m.group(1))
        last = _seed(m.group(2)) if m.group(2) is not None else first
        if last < first:
            raise SeedsError(f"range {first}-{last} is reversed; write {last}-{first}")
        if last - first >= limit:
            raise SeedsError(f"range {first}-{last} has {last - first + 1} seeds, more than the limit of {limit}")
        seen.update(dict.fromkeys(range(first, last + 1)))
        if len(seen) > limit:
            raise SeedsError(f"more than the limit of {limit} seeds")
    return list(seen)
