"""The repository's copy of Zoom's OpenAPI document is the one its provenance note names."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from tests.support import openapi

REPO = Path(__file__).resolve().parents[2]


def _noted_sha256(readme: str) -> str:
    found = re.search(r"^\| sha256 \| `([0-9a-f]{64})` \|$", readme, re.MULTILINE)
    assert found, "tests/data/zoom/README.md has no '| sha256 | `...` |' row"
    return found.group(1)


def test_spec_is_the_repositorys_own_copy() -> None:
    path = openapi.spec_path()
    assert path.is_file()
    assert path.resolve().is_relative_to(REPO)


def test_spec_matches_its_provenance_note() -> None:
    path = openapi.spec_path()
    noted = _noted_sha256((path.parent / "README.md").read_text(encoding="utf-8"))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == noted, (
        f"{path.name} differs from the copy its README describes: replace both together"
    )


def test_spec_is_the_one_the_note_describes() -> None:
    info = openapi.load_spec()["info"]
    assert (info["title"], info["version"]) == ("Meetings", "2")
