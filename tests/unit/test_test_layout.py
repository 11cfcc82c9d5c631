"""Test helpers live in tests/support: a test module imports no other test module, and
every other module beside the tests is a conftest or a package marker."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}  # from tests.unit import test_x
    return names


def test_no_test_module_imports_another() -> None:
    offences = [f"{path.relative_to(TESTS.parent)} imports {name}"
                for path in sorted(TESTS.rglob("test_*.py"))
                for name in sorted(_imported_modules(path))
                if name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith("test_")]
    assert offences == [], "move the shared helpers to tests/support:\n  " + "\n  ".join(offences)


def test_helpers_live_in_tests_support() -> None:
    support = TESTS / "support"
    strays = [str(path.relative_to(TESTS.parent)) for path in sorted(TESTS.rglob("*.py"))
              if support not in path.parents and not path.name.startswith("test_")
              and path.name not in ("conftest.py", "__init__.py")]
    assert strays == [], "helpers belong in tests/support: " + ", ".join(strays)


def test_the_check_sees_an_import_of_a_test_module(tmp_path: Path) -> None:
    planted = tmp_path / "test_planted.py"
    planted.write_text("from tests.unit.test_calendar import JOIN\nfrom tests.unit import test_redaction\n")
    assert {"tests.unit.test_calendar", "tests.unit.test_redaction"} <= _imported_modules(planted)
