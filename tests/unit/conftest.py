"""Unit tests run nothing: see tests/support/no_servers.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# urllib3 probes for IPv6 by binding a socket when it is first imported; a unit test that
# is the first to import requests (run alone, say) would trip the guard. Imported here,
# before any guard is installed, it is a library's import, not the test's doing.
import urllib3  # noqa: F401

from tests.support.no_servers import Guard


@pytest.fixture(autouse=True)
def no_servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Guard]:
    guard = Guard()
    guard.install(monkeypatch)
    yield guard
    if guard.violations:
        pytest.fail("\n".join(guard.violations), pytrace=False)
