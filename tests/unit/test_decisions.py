"""Version ordering and sync planning: the pipeline's decisions as plain functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from telemed.store import states
from telemed.workers.policy.decisions import SyncAction, decide_event, plan_sync

T0 = datetime(2026, 12, 3, 8, 30, tzinfo=UTC)


@dataclass
class A:
    version: int = 1
    desired: str = states.SCHEDULED
    synced_version: int = 0
    start_time: datetime | None = T0
    duration_minutes: int | None = 30
    timezone: str = "Europe/Berlin"


@dataclass
class M:
    start_time: datetime = T0
    duration_minutes: int = 30
    timezone: str = "Europe/Berlin"
    deleted_at: datetime | None = None


@pytest.mark.parametrize(
    ("current", "incoming", "applies"),
    [(None, 1, True), (1, 2, True), (1, 5, True), (2, 2, False), (3, 2, False), (3, 1, False)],
)
def test_highest_version_wins(current: int | None, incoming: int, applies: bool) -> None:
    assert decide_event(current, incoming).apply is applies


def test_any_arrival_order_ends_at_the_highest_version() -> None:
    import itertools

    for order in itertools.permutations([1, 2, 3, 4]):
        current = None
        for version in order:
            if decide_event(current, version).apply:
                current = version
        assert current == 4


def test_new_appointment_creates() -> None:
    assert plan_sync(A(), None) is SyncAction.CREATE


def test_deleted_meeting_is_recreated_while_scheduled() -> None:
    assert plan_sync(A(version=2, synced_version=1), M(deleted_at=T0)) is SyncAction.CREATE


def test_moved_time_updates_the_same_meeting() -> None:
    moved = A(version=2, synced_version=1, start_time=T0 + timedelta(hours=1))
    assert plan_sync(moved, M()) is SyncAction.UPDATE
    assert plan_sync(A(version=2, synced_version=1, duration_minutes=45), M()) is SyncAction.UPDATE


def test_matching_meeting_needs_nothing_or_a_confirmation() -> None:
    assert plan_sync(A(version=1, synced_version=1), M()) is SyncAction.NOTHING
    assert plan_sync(A(version=2, synced_version=1), M()) is SyncAction.CONFIRM


def test_cancel_deletes_a_live_meeting_and_never_creates() -> None:
    cancelled = A(version=2, synced_version=1, desired=states.CANCELLED)
    assert plan_sync(cancelled, M()) is SyncAction.DELETE
    assert plan_sync(cancelled, None) is SyncAction.CONFIRM
    assert plan_sync(cancelled, M(deleted_at=T0)) is SyncAction.CONFIRM
    done = A(version=2, synced_version=2, desired=states.CANCELLED)
    assert plan_sync(done, M(deleted_at=T0)) is SyncAction.NOTHING
    assert plan_sync(done, None) is SyncAction.NOTHING
