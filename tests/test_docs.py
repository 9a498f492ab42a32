"""The project's Markdown: links that lead somewhere, a README that starts where a user starts,
and figures that name their machine and date rather than a working session."""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import check_links  # noqa: E402


def test_every_relative_link_and_anchor_in_the_markdown_resolves() -> None:
    files = check_links.markdown_files()
    assert ROOT / "README.md" in files and ROOT / "docs" / "http-api.md" in files
    assert check_links.broken(files) == []


def test_the_link_checker_reports_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## The `make run` step\n")
    page = tmp_path / "page.md"
    page.write_text("# Page\n\n[ok](other.md#the-make-run-step) [self](#page) [web](https://example.org/x)\n"
                    "[gone](missing.md) [no heading](other.md#nope) ![img](pic.png)\n\n"
                    "```\n[in code](not-checked.md)\n```\n")
    problems = check_links.broken([page])
    assert len(problems) == 3, problems
    assert any("missing.md: no such file" in p for p in problems)
    assert any("no heading #nope in other.md" in p for p in problems)
    assert any("pic.png: no such file" in p for p in problems)


def test_readme_is_short_and_opens_with_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200
    head = "\n".join(lines[:15])
    assert "make run" in head and "make test" in head


def test_no_markdown_file_speaks_of_working_sessions() -> None:
    for path in check_links.markdown_files():
        for n, line in enumerate(path.read_text().splitlines(), 1):
            assert not re.search(r"\bsession \d+", line, re.I), f"{path.relative_to(ROOT)}:{n}: {line}"
