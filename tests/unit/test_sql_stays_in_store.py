"""Queries live in ``store/``: no other package builds a statement or runs one on a session.

A rule read from the source (like the template check in test_notifier_templates): a
query written in a worker or a command is a second place a table's meaning is decided.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("events", "workers", "web", "telemed", "zoom")
# Statement builders; exceptions (sqlalchemy.exc) and the Session type may be imported.
BUILDERS = {"select", "text", "func", "col", "update", "delete", "insert", "exists", "bindparam"}
RUNNERS = {"exec", "execute", "scalar", "scalars", "get", "query"}
SESSION_NAMES = {"session", "s", "connection", "conn"}


def _problems(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in {"sqlmodel", "sqlalchemy"}:
            found += [f"imports {alias.name} from {node.module}" for alias in node.names if alias.name in BUILDERS]
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in RUNNERS
                and isinstance(node.func.value, ast.Name) and node.func.value.id in SESSION_NAMES):
            found.append(f"calls {node.func.value.id}.{node.func.attr}() (line {node.lineno})")
    return found


def test_no_statement_is_built_or_run_outside_store() -> None:
    offenders = {
        str(path.relative_to(ROOT)): problems
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if (problems := _problems(path))
    }
    assert offenders == {}, "move these queries into a store/ function: " + repr(offenders)
