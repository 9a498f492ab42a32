"""Seed lists as users write them: `0-9,42` is seeds 0 to 9 inclusive, then 42 (stylegan's
`--seeds` syntax). The CLI's bulk mode and GET /faces.zip both parse with `parse_seeds`."""
from __future__ import annotations

import re

MAX_SEED = 2**32 - 1
MAX_SEEDS = 1_000_000  # the default cap: a typo like 0-4000000000 is refused, not rendered


def decimal_at_most(limit: int) -> str:
    """A regular expression (no anchors) for the decimal numbers 0..limit, leading zeros allowed:
    shorter numbers, then for each digit of `limit` its prefix followed by a smaller digit."""
    digits = str(limit)
    alternatives = [f"[0-9]{{1,{len(digits) - 1}}}"] if len(digits) > 1 else []
    for i, d in enumerate(digits):
        if d != "0":
            rest = len(digits) - i - 1
            alternatives.append(digits[:i] + f"[0-{int(d) - 1}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    return f"0*(?:{'|'.join([*alternatives, digits])})"


_NUMBER = decimal_at_most(MAX_SEED)
# The whole syntax, for the HTTP schema: a seed is a plain decimal number up to MAX_SEED (leading
# zeros allowed, as in the seedNNNN.png names); what matches may still be refused for what a
# pattern cannot say (a reversed range, more seeds than the limit), what does not match always is.
SEEDS_PATTERN = rf"^{_NUMBER}(-{_NUMBER})?(,{_NUMBER}(-{_NUMBER})?)*$"
_ITEM = re.compile(r"([0-9]+)(?:-([0-9]+))?")


class SeedsError(ValueError):
    """A seed list that cannot be used; the message says which part and why."""


def _seed(text: str) -> int:
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(MAX_SEED)) or int(digits) > MAX_SEED:
        raise SeedsError(f"seed {digits if len(digits) <= 20 else digits[:20] + '...'} is out of range 0..{MAX_SEED}")
    return int(digits)


def parse_seeds(text: str, limit: int = MAX_SEEDS, spaces: bool = True) -> list[int]:
    """The seeds `text` names, in the order given, each once (`0-3,2,9` is 0, 1, 2, 3, 9).
    With `spaces`, blanks around items are allowed (a command line's `0-9, 42`); without, the
    syntax is exactly SEEDS_PATTERN's.

    Raises SeedsError for an empty list, an item that is not N or A-B, a reversed range, a seed
    past 2^32-1, or more than `limit` distinct seeds (checked before any range is expanded)."""
    if not spaces and any(ch.isspace() for ch in text):
        raise SeedsError("seeds are written without spaces, e.g. 0-9,42")
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
