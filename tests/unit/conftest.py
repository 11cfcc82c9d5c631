"""Unit tests run nothing: see tests/support/no_servers.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.no_servers import Guard


@pytest.fixture(autouse=True)
def no_servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Guard]:
    guard = Guard()
    guard.install(monkeypatch)
    yield guard
    if guard.violations:
        pytest.fail("\n".join(guard.violations), pytrace=False)
