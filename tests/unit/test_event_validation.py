"""The v1 contract: every rule, and every bad field named with its path."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from telemed.events import InvalidEvent, parse_event
from telemed.samples import booking

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def valid(**changes: Any) -> dict[str, Any]:
    event = booking("A-1", 1, NOW + timedelta(days=2))
    event["occurred_at"] = "2026-12-01T08:00:00Z"
    for path, value in changes.items():
        target = event
        *parents, last = path.split("__")
        for part in parents:
            target = target[part]
        if value is ...:
            target.pop(last, None)
        else:
            target[last] = value
    return event


def errors_of(event: Any) -> dict[str, str]:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(event, now=NOW)
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in caught.value.errors}


def test_a_valid_booking_parses_with_aware_times() -> None:
    event = parse_event(valid(), now=NOW)
    assert event.type == "appointment.booked"
    assert event.appointment.start_time.tzinfo is not None
    assert event.appointment.doctor.zoom_host == "d-1@clinic.example"


@pytest.mark.parametrize(
    ("path", "value", "expected_loc"),
    [
        ("event_id", "has space", "event_id"),
        ("event_id", "x" * 129, "event_id"),
        ("event_id", "", "event_id"),
        ("occurred_at", "2026-12-01", "occurred_at"),
        ("occurred_at", "2026-12-01T08:00:00", "occurred_at"),  # no offset
        ("occurred_at", 1764576000, "occurred_at"),  # unix seconds are not RFC 3339
        ("occurred_at", "2026-02-30T08:00:00Z", "occurred_at"),
        ("occurred_at", "9999-12-31T23:59:59-23:59", "occurred_at"),  # year 10000 in UTC
        ("occurred_at", "0001-01-01T00:00:00+01:00", "occurred_at"),  # year 0 in UTC
        ("appointment__start_time", "9999-12-31T23:00:00-02:00", "appointment.start_time"),
        ("appointment__start_time", "2026-11-30T08:00:00Z", "appointment.start_time"),  # past
        ("appointment__start_time", "2026-12-03 09:30", "appointment.start_time"),
        ("appointment__duration_minutes", 0, "appointment.duration_minutes"),
        ("appointment__duration_minutes", 1441, "appointment.duration_minutes"),
        ("appointment__duration_minutes", "30", "appointment.duration_minutes"),
        ("appointment__timezone", "Mars/Olympus_Mons", "appointment.timezone"),
        ("appointment__timezone", "CET ", "appointment.timezone"),
        ("appointment__version", 0, "appointment.version"),
        ("appointment__version", True, "appointment.version"),
        ("appointment__version", "2", "appointment.version"),
        ("appointment__id", "A/1", "appointment.id"),
        ("appointment__doctor__email", "not-an-email", "appointment.doctor.email"),
        ("appointment__patient__email", "a@b", "appointment.patient.email"),
        ("appointment__patient__name", "", "appointment.patient.name"),
        ("appointment__patient__name", "x" * 201, "appointment.patient.name"),
        ("appointment__start_time", ..., "appointment.start_time"),
        ("appointment__duration_minutes", ..., "appointment.duration_minutes"),
        ("appointment__surprise", 1, "appointment.surprise"),
    ],
)
def test_each_bad_field_is_named(path: str, value: Any, expected_loc: str) -> None:
    errors = errors_of(valid(**{path: value}))
    assert expected_loc in errors, errors


def test_every_bad_field_is_reported_at_once() -> None:
    event = valid(event_id="bad id", appointment__version=0, appointment__timezone="Nowhere/Town")
    assert {"event_id", "appointment.version", "appointment.timezone"} <= set(errors_of(event))


def test_unknown_type_still_reports_the_other_fields() -> None:
    errors = errors_of(valid(type="appointment.moved", event_id="bad id"))
    assert "type" in errors and "event_id" in errors


def test_cancel_may_omit_time_but_not_the_people() -> None:
    cancel = booking("A-1", 2, NOW + timedelta(days=1), type="appointment.cancelled")
    assert parse_event(cancel, now=NOW).appointment.start_time is None
    del cancel["appointment"]["patient"]
    assert "appointment.patient" in errors_of(cancel)


def test_cancel_of_a_past_appointment_is_accepted() -> None:
    cancel = booking("A-1", 2, NOW - timedelta(days=1), type="appointment.cancelled")
    cancel["appointment"]["start_time"] = "2026-11-01T08:00:00Z"
    assert parse_event(cancel, now=NOW).type == "appointment.cancelled"


def test_stored_events_reparse_after_their_start_passed() -> None:
    event = valid()
    later = NOW + timedelta(days=10)
    with pytest.raises(InvalidEvent):
        parse_event(event, now=later)
    assert parse_event(event, now=later, allow_past=True).appointment.version == 1


@pytest.mark.parametrize("raw", [b"{", b"[]", b"null", "\"text\"", b"\xff\xfe"])
def test_non_objects_are_rejected_as_the_whole_event(raw: Any) -> None:
    errors = errors_of(raw)
    assert "" in errors


def test_offsets_are_kept_and_fractions_beyond_microseconds_accepted() -> None:
    event = parse_event(valid(appointment__start_time="2026-12-03T09:30:00.123456789+01:00"), now=NOW)
    assert event.appointment.start_time.utcoffset() == timedelta(hours=1)


def test_error_message_lists_fields_without_values() -> None:
    secretish = "grace.secret@example.org"
    event = valid(appointment__patient__name="", appointment__patient__email=secretish.replace("@", ""))
    with pytest.raises(InvalidEvent) as caught:
        parse_event(copy.deepcopy(event), now=NOW)
    assert "appointment.patient.name" in str(caught.value)
