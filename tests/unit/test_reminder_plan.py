"""When reminders go: once per offset, never stale, never after the start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from telemed.workers.policy.reminder_plan import (
    FRESH_START_OFFSET,
    Decision,
    base_kind,
    is_reminder,
    offset_label,
    offsets_for,
    parse_offsets,
    plan,
    reminder_kind,
)

START = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
DAY, QUARTER = 86400, 900
BOOKED_EARLY = START - timedelta(days=5)


def test_parse_offsets() -> None:
    assert parse_offsets("24h,15m") == [DAY, QUARTER]
    assert parse_offsets(" 2d , 90s ,15m,15m") == [2 * DAY, QUARTER, 90]
    assert parse_offsets("") == []


@pytest.mark.parametrize("bad", ["24", "h", "15x", "-5m", "0m"])
def test_bad_offsets_name_the_variable(bad: str) -> None:
    with pytest.raises(ValueError, match="TELEMED_REMINDER_OFFSETS"):
        parse_offsets(bad)


def test_kinds_are_unique_per_offset_and_render_as_reminders() -> None:
    assert reminder_kind(DAY) == "reminder-24h" and reminder_kind(QUARTER) == "reminder-15m"
    assert offset_label(90) == "90s" and offset_label(2 * DAY) == "48h"
    assert is_reminder("reminder-15m") and not is_reminder("invite")
    assert base_kind("reminder-24h") == "reminder" and base_kind("updated") == "updated"
    assert len(reminder_kind(999_999)) <= 24  # fits the outbox kind column


def test_nothing_before_the_moment() -> None:
    decisions = plan(START - timedelta(days=2), START, [DAY, QUARTER], BOOKED_EARLY)
    assert decisions == {DAY: Decision.WAIT, QUARTER: Decision.WAIT}


def test_each_reminder_at_its_moment() -> None:
    assert plan(START - timedelta(hours=23), START, [DAY, QUARTER], BOOKED_EARLY) == {
        DAY: Decision.SEND, QUARTER: Decision.WAIT}
    assert plan(START - timedelta(minutes=10), START, [QUARTER], BOOKED_EARLY) == {QUARTER: Decision.SEND}


def test_when_several_are_due_only_the_closest_goes() -> None:
    decisions = plan(START - timedelta(minutes=5), START, [DAY, QUARTER], BOOKED_EARLY)
    assert decisions == {DAY: Decision.SKIP, QUARTER: Decision.SEND}


def test_a_late_booking_skips_reminders_whose_moment_had_passed() -> None:
    booked = START - timedelta(hours=20)
    assert plan(booked + timedelta(minutes=1), START, [DAY, QUARTER], booked) == {
        DAY: Decision.SKIP, QUARTER: Decision.WAIT}


def test_a_moved_appointment_counts_from_when_the_move_was_told() -> None:
    moved_at = START - timedelta(hours=30)  # the new version was announced 30 h ahead
    assert plan(START - timedelta(hours=23), START, [DAY], moved_at) == {DAY: Decision.SEND}


def test_nothing_once_started() -> None:
    assert plan(START, START, [DAY, QUARTER], BOOKED_EARLY) == {DAY: Decision.SKIP, QUARTER: Decision.SKIP}


def test_doctor_without_signed_links_always_gets_a_fresh_start_link_shortly_before() -> None:
    assert offsets_for("doctor", [DAY], signed_start_links=False) == [DAY, FRESH_START_OFFSET]
    assert offsets_for("doctor", [], signed_start_links=False) == [FRESH_START_OFFSET]
    assert offsets_for("doctor", [DAY, QUARTER], signed_start_links=False) == [DAY, QUARTER]
    assert offsets_for("doctor", [DAY], signed_start_links=True) == [DAY]
    assert offsets_for("patient", [DAY], signed_start_links=False) == [DAY]
