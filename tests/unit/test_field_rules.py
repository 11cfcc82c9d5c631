"""events.rules: each field rule, the door refusing what breaks it (naming the field), and
the notifier refusing the same for rows stored before the rule existed."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from telemed.events import InvalidEvent, parse_event
from telemed.events.rules import (
    EARLIEST,
    LATEST,
    TEXT_SCHEMA_PATTERN,
    EmailProblem,
    ascii_email,
    email_problem,
    text_problem,
    time_problem,
)
from telemed.samples import booking
from telemed.workers.notifier.messages import MeetingTime
from tests.support.notices import doctor, patient

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

HOSTILE_NAMES = {
    "C1 next line": "Jo\u0085Bcc",
    "C1 CSI": "Jo\u009b31m",
    "C0 escape": "Jo\x1b[31m",
    "right-to-left override": "Ann\u202egpj.exe",
    "left-to-right embedding": "Ann\u202aX",
    "pop directional formatting": "Ann\u202c",
    "right-to-left isolate": "Ann\u2067X\u2069",
    "first strong isolate": "Ann\u2068X",
    "left-to-right mark": "Ann\u200eX",
    "right-to-left mark": "Ann\u200fX",
    "arabic letter mark": "Ann\u061cX",
    "zero-width space": "Dr\u200bWho",
    "zero-width non-joiner": "Dr\u200cWho",
    "zero-width joiner": "Dr\u200dWho",
    "word joiner": "Dr\u2060Who",
    "byte order mark": "\ufeffDr Who",
    "soft hyphen": "Dr\u00adWho",
    "line separator": "Dr\u2028Who",
    "paragraph separator": "Dr\u2029Who",
    "private use": "Dr\ue000Who",
    "astral private use": "Dr\U000f0000Who",
    "unassigned": "Dr\U0003ffffWho",
    "lone surrogate": "Dr\ud800Who",
    "tag character": "Dr\U000e0041Who",
}
GOOD_NAMES = ["Grace Hopper", "Jörg Müller-Lüdenscheidt", "Zoë O'Brien", "李小龍", "Ελένη", "محمد",
              "Dr. med. Ana Lúcia", "Ⅻ Ŧęšť", "emoji 🙂", "e\u0301 combining", "ideographic\u3000space"]


def event(**changes: Any) -> dict[str, Any]:
    data = booking("A-1", 1, NOW + timedelta(days=2))
    data["occurred_at"] = "2026-12-01T08:00:00Z"
    for path, value in changes.items():
        target = data
        *parents, last = path.split("__")
        for part in parents:
            target = target[part]
        target[last] = value
    return data


def door_errors(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(data, now=NOW)
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in caught.value.errors}


# --- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(HOSTILE_NAMES.values()), ids=list(HOSTILE_NAMES))
def test_hostile_names_are_refused_at_the_door_naming_the_field(name: str) -> None:
    assert text_problem(name)
    for path in ("appointment__patient__name", "appointment__doctor__name", "appointment__clinic__name"):
        errors = door_errors(event(**{path: name}))
        loc = path.replace("__", ".")
        assert list(errors) == [loc], errors
        # A lone surrogate is refused by pydantic's string check before the rule runs.
        assert "visible characters" in errors[loc] or "\ud800" in name, errors


@pytest.mark.parametrize("name", list(HOSTILE_NAMES.values()), ids=list(HOSTILE_NAMES))
def test_the_notifier_refuses_the_same_names_from_old_rows(name: str) -> None:
    with pytest.raises(ValueError, match=r"^patient_name: must hold only visible"):
        patient(patient_name=name)
    with pytest.raises(ValueError, match=r"^doctor_name: must hold only visible"):
        doctor(doctor_name=name)


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_names_in_any_script_pass(name: str) -> None:
    assert text_problem(name) is None
    parsed = parse_event(event(appointment__patient__name=name), now=NOW)
    assert parsed.appointment.patient.name == name
    assert patient(patient_name=name).patient_name == name


def test_the_schema_pattern_says_the_rule_for_the_basic_plane() -> None:
    """The JSON Schema pattern refuses a character of the BMP exactly when the rule does
    (unassigned ones aside: the pattern cannot follow Unicode's versions)."""
    if unicodedata.unidata_version != "14.0.0":  # pragma: no cover - a newer Python's Unicode
        pytest.skip(f"the pattern lists Unicode 14's format characters, this is {unicodedata.unidata_version}")
    allowed = re.compile(TEXT_SCHEMA_PATTERN)
    disagree = [
        f"U+{cp:04X}" for cp in range(0x10000)
        if unicodedata.category(chr(cp)) != "Cn"
        # Framed: Python's "$" also matches before a final line feed (ECMA's does not).
        and bool(allowed.match(f"x{chr(cp)}x")) != (text_problem(chr(cp)) is None)
    ]
    assert disagree == []


# --- e-mail addresses ------------------------------------------------------------------------


def test_an_internationalised_domain_is_accepted_in_its_ascii_form() -> None:
    assert ascii_email("doc@bücher.example") == "doc@xn--bcher-kva.example"
    parsed = parse_event(event(appointment__doctor__email="doc@bücher.example",
                               appointment__patient__email="Grace@MAIL.Bücher.example"), now=NOW)
    assert parsed.appointment.doctor.email == "doc@xn--bcher-kva.example"
    assert parsed.appointment.patient.email == "Grace@mail.xn--bcher-kva.example"
    assert parsed.appointment.doctor.zoom_host == "doc@xn--bcher-kva.example"
    spaced = parse_event(event(appointment__patient__email=" grace@example.org "), now=NOW)
    assert spaced.appointment.patient.email == "grace@example.org"  # trimmed, as EmailStr did
    # What the door stores, the notifier takes.
    assert email_problem(parsed.appointment.doctor.email) is None
    assert doctor(doctor_email=parsed.appointment.doctor.email).doctor_email == "doc@xn--bcher-kva.example"


@pytest.mark.parametrize("path", ["appointment__patient__email", "appointment__doctor__email",
                                  "appointment__doctor__zoom_user"])
def test_a_non_ascii_local_part_is_refused_at_the_door_naming_the_field(path: str) -> None:
    errors = door_errors(event(**{path: "jörg@mail.example"}))
    loc = path.replace("__", ".")
    assert list(errors) == [loc], errors
    assert any("ASCII characters before the @" in msg for msg in errors.values()), errors
    with pytest.raises(EmailProblem, match="SMTPUTF8"):
        ascii_email("jörg@mail.example")


def test_the_notifier_refuses_an_address_stored_in_unicode_form() -> None:
    with pytest.raises(ValueError, match=r"^patient_email: must be stored in its ASCII form"):
        patient(patient_email="grace@bücher.example")
    with pytest.raises(ValueError, match=r"^doctor_email: must have only ASCII"):
        doctor(doctor_email="jörg@mail.example")


@pytest.mark.parametrize("address", ["a@b", "not-an-email", "a b@c.example", "a@example.org\r\nBcc: x@y.example",
                                     "x" * 250 + "@example.org"])
def test_malformed_addresses_are_still_refused(address: str) -> None:
    assert email_problem(address)
    assert "appointment.patient.email" in door_errors(event(appointment__patient__email=address))


# --- times ------------------------------------------------------------------------------------


@pytest.mark.parametrize("start", [
    "9999-12-31T23:00:00+00:00",  # the example: its end and local time overflow
    "9999-12-31T23:59:59-01:00",  # year 10000 in UTC
    "3000-01-01T00:00:00Z",
    "2999-12-31T23:00:00-02:00",  # 3000-01-01T01:00Z
])
def test_a_start_time_outside_the_range_is_refused_naming_the_field(start: str) -> None:
    errors = door_errors(event(appointment__start_time=start))
    assert errors == {"appointment.start_time": "must lie in the years 2000 to 2999 (UTC)"}


def test_the_range_bounds_are_exact() -> None:
    assert time_problem(EARLIEST) is None and time_problem(EARLIEST - timedelta(microseconds=1))
    assert time_problem(LATEST - timedelta(microseconds=1)) is None and time_problem(LATEST)
    last = (LATEST - timedelta(seconds=1)).isoformat()
    assert parse_event(event(appointment__start_time=last), now=NOW).appointment.start_time == LATEST - timedelta(seconds=1)
    assert "occurred_at" in door_errors(event(occurred_at="1999-12-31T23:59:59Z"))


def test_a_cancel_carries_the_same_range() -> None:
    cancel = event(type="appointment.cancelled", appointment__start_time="9999-12-31T23:00:00+00:00")
    assert "appointment.start_time" in door_errors(cancel)


def test_the_notifier_refuses_a_time_out_of_range_instead_of_overflowing() -> None:
    with pytest.raises(ValueError, match=r"^start_utc: must lie in the years"):
        MeetingTime(datetime(9999, 12, 31, 23, 0, tzinfo=UTC), 60, "Pacific/Kiritimati")
