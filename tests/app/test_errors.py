"""app/errors.py is the one table from exception to status, message and headers."""
from __future__ import annotations

import ast
from pathlib import Path

import app
from app import errors

APP = Path(app.__file__).parent


def _raised_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            names.add(target.id if isinstance(target, ast.Name) else getattr(target, "attr", ""))
    return names


def test_no_route_raises_an_http_exception_of_its_own() -> None:
    offenders = {p.name for p in APP.glob("*.py") if "HTTPException" in _raised_names(p)}
    assert offenders == set(), "raise one of app/errors.py's exceptions (or add one to its table)"


def test_the_routes_own_refusals_are_in_the_table() -> None:
    mapped = {kind.__name__: status for kind, (status, _) in errors._STATUS.items()}
    assert {k: mapped[k] for k in ("Missing", "Unauthorized", "NoToken", "CannotExport", "FormatUnavailable")} \
        == {"Missing": 404, "Unauthorized": 401, "NoToken": 503, "CannotExport": 409, "FormatUnavailable": 503}
    assert errors._STATUS[errors.Unauthorized][1] == {"WWW-Authenticate": "Bearer"}
