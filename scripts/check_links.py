"""Check the relative links and #anchors of the project's Markdown files.

    python scripts/check_links.py            # every tracked or new *.md file of the repository
    python scripts/check_links.py FILE...    # just these

A link to a file must name one that exists; a `#anchor` must be a heading of the page it points
at, slugged the way GitHub renders headings. Web links are not fetched. Prints one line per broken
link and exits 1 when there is any.
"""
from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import unquote

from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[1]
_md = MarkdownIt("commonmark").enable("table")


def markdown_files(root: Path = ROOT) -> list[Path]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
                         cwd=root, capture_output=True, text=True, check=True).stdout
    return sorted(root / line for line in out.splitlines() if (root / line).is_file())


def slug(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    tokens = _md.parse(path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    found = set()
    for i, tok in enumerate(tokens):
        if tok.type != "heading_open":
            continue
        text = "".join(c.content for c in tokens[i + 1].children or [] if c.type in ("text", "code_inline"))
        base = slug(text)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(path: Path) -> Iterator[tuple[int, str]]:
    """(line, target) of every link and image in the file, code blocks left out."""
    for tok in _md.parse(path.read_text(encoding="utf-8")):
        for child in tok.children or []:
            target = child.attrs.get("href") if child.type == "link_open" else (
                child.attrs.get("src") if child.type == "image" else None)
            if target:
                yield (tok.map[0] + 1 if tok.map else 0), str(target)


def broken(files: Iterable[Path]) -> list[str]:
    problems = []
    cache: dict[Path, set[str]] = {}
    for path in files:
        for line, target in links(path):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, mailto:, ...
                continue
            ref, _, anchor = target.partition("#")
            dest = (path.parent / unquote(ref)).resolve() if ref else path
            where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{line}"
            if not dest.exists():
                problems.append(f"{where}: {target}: no such file")
            elif anchor and dest.suffix == ".md":
                if dest not in cache:
                    cache[dest] = anchors(dest)
                if anchor not in cache[dest]:
                    problems.append(f"{where}: {target}: no heading #{anchor} in {dest.name}")
    return problems


def main(argv: list[str]) -> int:
    files = [Path(a).resolve() for a in argv] or markdown_files()
    problems = broken(files)
    for p in problems:
        print(p)
    print(f"{len(files)} files, {len(problems)} broken links", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
