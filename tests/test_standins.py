"""docker/standins.sh takes its Debian mirror from the host's apt sources (a host whose apt points
at a lab mirror cannot reach deb.debian.org), in both of apt's formats."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def mirror(apt_etc: Path, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "DEBIAN_MIRROR"}
    out = subprocess.run(["bash", str(REPO / "docker" / "standins.sh"), "mirror"], check=True, text=True,
                         capture_output=True, env={**environ, "APT_ETC": str(apt_etc), **env})
    return out.stdout.strip()


def test_a_one_line_source_for_bookworm_is_used_past_comments_options_and_other_distributions(tmp_path):
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb http://archive.ubuntu.com/ubuntu jammy main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://mirror.lab.example/debian/ bookworm main\n")
    assert mirror(tmp_path) == "http://mirror.lab.example/debian"


def test_a_deb822_source_is_used_unless_disabled_or_only_security(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n\n"
        "Types: deb\nURIs: http://lab.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
        "Types: deb deb-src\n# a comment\nURIs: http://lab.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n")
    (tmp_path / "sources.list.d" / "other.list.disabled").write_text("deb http://never.example/debian bookworm main\n")
    assert mirror(tmp_path) == "http://lab.example/debian"


def test_without_a_bookworm_source_it_is_debians_and_debian_mirror_overrides(tmp_path):
    (tmp_path / "sources.list").write_text("deb http://archive.ubuntu.com/ubuntu jammy main\n")
    assert mirror(tmp_path) == "http://deb.debian.org/debian"
    assert mirror(tmp_path, DEBIAN_MIRROR="http://given.example/debian") == "http://given.example/debian"
