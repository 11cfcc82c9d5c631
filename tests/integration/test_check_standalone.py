"""The stand-alone check (.ci/check_standalone.py, run by ``make lint``) on synthetic trees.

The planted violations are assembled from pieces so this file does not itself trip the check.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.integration  # git in subprocesses, on trees it makes

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "check_standalone.py"
UP = ".." + "/"
SHARED = UP + "shared"
MACHINE = "/" + "work/telemed"
HERE = "Path(__file__)"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_standalone", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


check = _load()

CLEAN = {
    "Makefile": "test:\n\tpython -m pytest tests\n",
    "pkg/mod.py": "from pathlib import Path\nROOT = Path(__file__).resolve().parents[1]\n",
    "tests/unit/test_x.py": "from pathlib import Path\nDATA = Path(__file__).resolve().parent.parent / 'data'\n"
                            "BAD_ZONE = '" + UP + UP + "etc/passwd'  # input data, not a path we read\n",
    "docs/guide.md": "See [the README](" + UP + "README.md) and [data](" + UP + "tests/data/x.json).\n",
}


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    return root


def _run(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), str(root)], capture_output=True, text=True, timeout=60)


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    result = _run(_tree(tmp_path, CLEAN))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("tests/support/spec.py", f"SPEC = '{SHARED}/zoom/spec.json'\n", "shared folder"),
        ("tests/support/spec.py", "p = repo.parent / " + "'shared' / 'zoom'\n", "shared folder"),
        ("Makefile", f"spec:\n\tcp {MACHINE}/spec.json .\n", "one machine"),
        ("scripts/run.sh", f"cd /home/ada{MACHINE}\n", "one machine"),
        ("pkg/mod.py", "SPEC = " + HERE + ".resolve().parents[1].parent / 'x'\n", "climbs"),
        ("tests/unit/test_y.py", "X = " + HERE + ".parents[3]\n", "climbs"),
        ("pkg/mod.py", "X = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))\n", "climbs"),
        ("docs/guide.md", "The design is in [DESIGN](" + UP + UP + "DESIGN.md).\n", "leaves the repository"),
    ],
)
def test_a_planted_violation_fails(tmp_path: Path, name: str, text: str, reason: str) -> None:
    files = {**CLEAN, name: CLEAN.get(name, "") + text}
    result = _run(_tree(tmp_path, files))
    assert result.returncode == 1
    assert f"{name}:" in result.stderr and reason in result.stderr


def test_only_tracked_files_count(tmp_path: Path) -> None:
    root = _tree(tmp_path, CLEAN)
    (root / "notes.txt").write_text(f"{SHARED}/zoom\n", encoding="utf-8")  # untracked: not the project's
    assert _run(root).returncode == 0


def test_climbing_is_measured_from_where_the_file_sits() -> None:
    line = "ROOT = Path(__file__).resolve().parents[2]\n"
    assert list(check.line_violations("tests/unit/test_x.py", line)) == []
    assert list(check.line_violations("tests/test_x.py", line)) != []


def test_this_repository_stands_alone() -> None:
    result = _run(SCRIPT.parents[1])
    assert result.returncode == 0, result.stderr
