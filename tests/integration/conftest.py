"""Fixtures the integration tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from telemed.zoom.simulator import ZoomSimulator


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[ZoomSimulator]:
    """One Zoom simulator per test module; each module's ``sim`` fixture resets it per test."""
    with ZoomSimulator() as sim:
        yield sim
