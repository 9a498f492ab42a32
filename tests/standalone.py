"""Running a snippet of Python as a user without this project would: the venv's installed
packages are importable, this repository's packages are not (not even through the editable
install's import hook), and the snippet fails if one of them got imported anyway."""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

PROJECT_PACKAGES = ("model", "worker", "app", "client", "tests")

_CHECK = f"""
import sys as _sys
_leaked = sorted(m for m in _sys.modules if m.split(".")[0] in {PROJECT_PACKAGES!r})
assert not _leaked, f"project code was imported: {{_leaked}}"
"""


def run_standalone(code: str, *args: object, cwd: Path) -> str:
    """Run `code` with `args` in sys.argv[1:] and return its stdout. `-I -S`: no current folder,
    no PYTHON* variables and no .pth files on the path; only the site-packages folders."""
    paths = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    prelude = f"import sys\nsys.path[:0] = {paths!r}\n"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(cwd)}
    r = subprocess.run([sys.executable, "-I", "-S", "-c", prelude + code + _CHECK, *map(str, args)],
                       cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout
