"""Calendar invitations: one UID per appointment, SEQUENCE = version, REQUEST / CANCEL,
attached to the patient's and the doctor's mail, never carrying a start link."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import Message
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.fernet import Fernet
from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from telemed.foundation.tenancy import DEFAULT_CLINIC, ClinicProfile
from telemed.workers.delivery.mail import compose
from telemed.workers.notifier import calendar
from telemed.workers.notifier.calendar import Method
from telemed.workers.notifier.render import render_patient
from tests.support.invitations import invitation
from tests.support.mail_scan import parsed
from tests.support.notices import patient
from tests.support.snapshots import JOIN, START, snapshot


def parse(ics: bytes) -> tuple[Calendar, Any]:
    cal = Calendar.from_ical(ics)
    [event] = cal.walk("VEVENT")
    return cal, event


def test_request_has_stable_uid_sequence_and_utc_times() -> None:
    cal, event = parse(calendar.build_ics(invitation()))
    assert str(cal["METHOD"]) == "REQUEST"
    assert str(event["UID"]) == "telemed-A-1001@clinic.example"
    assert int(event["SEQUENCE"]) == 1
    assert event.decoded("DTSTART") == START
    assert event.decoded("DTEND") == START + timedelta(minutes=30)
    assert str(event["STATUS"]) == "CONFIRMED"
    assert str(event["LOCATION"]) == JOIN
    assert "mailto:grace@example.org" in str(event["ATTENDEE"])


def test_update_and_cancel_keep_the_uid_and_raise_the_sequence() -> None:
    _, first = parse(calendar.build_ics(invitation()))
    _, moved = parse(calendar.build_ics(invitation(version=2, start=START + timedelta(hours=2))))
    cal, cancelled = parse(calendar.build_ics(invitation(version=3, method=Method.CANCEL, location=None)))
    assert str(first["UID"]) == str(moved["UID"]) == str(cancelled["UID"])
    assert [int(e["SEQUENCE"]) for e in (first, moved, cancelled)] == [1, 2, 3]
    assert str(cal["METHOD"]) == "CANCEL" and str(cancelled["STATUS"]) == "CANCELLED"
    assert "LOCATION" not in cancelled


def test_a_cancel_without_a_known_time_is_still_valid() -> None:
    _, event = parse(calendar.build_ics(invitation(method=Method.CANCEL, start=None, duration_minutes=None,
                                                   location=None)))
    assert "DTSTART" not in event and int(event["SEQUENCE"]) == 1


@pytest.mark.parametrize("field", ["description", "location", "summary"])
def test_a_host_link_never_goes_into_a_calendar(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        invitation(**{field: "https://zoom.us/s/85012345678?zak=eyJabc"})


def test_a_request_needs_a_time() -> None:
    with pytest.raises(ValueError, match="start"):
        invitation(start=None)


def test_attached_as_calendar_alternative_and_as_a_file() -> None:
    message = render_patient(patient(), "telemed <no-reply@clinic.example>")
    ics = calendar.build_ics(invitation())
    calendar.attach(message, ics, Method.REQUEST)
    types = ["multipart/mixed", "multipart/alternative", "text/plain", "text/html", "text/calendar",
             "application/ics"]
    assert [part.get_content_type() for part in message.walk()] == types
    received = parsed(message)
    assert not received.defects and [part.get_content_type() for part in received.walk()] == types
    # The message's own headers stay at the top; the alternative part has only its type.
    assert received["Message-ID"] == message["Message-ID"] and received["MIME-Version"] == "1.0"
    [alternative] = [p for p in received.walk() if p.get_content_type() == "multipart/alternative"]
    assert [k.lower() for k in alternative] == ["content-type"]
    [cal_part] = [p for p in received.walk() if p.get_content_type() == "text/calendar"]
    assert cal_part.get_param("method") == "REQUEST" and cal_part["Content-Transfer-Encoding"] == "base64"
    assert cal_part.get_payload(decode=True) == ics  # byte for byte: CRLF line ends (RFC 5545)
    [file_part] = [p for p in received.walk() if p.get_content_type() == "application/ics"]
    assert file_part.get_filename() == "invite.ics" and file_part.get_content() == ics
    assert file_part.get_content_disposition() == "attachment"
    assert [p.get_filename() for p in received.iter_attachments()] == ["invite.ics"]


def test_attach_refuses_a_host_link_even_folded() -> None:
    message = render_patient(patient(), "telemed <no-reply@clinic.example>")
    ics = calendar.build_ics(invitation()).replace(
        b"LOCATION:", b"LOCATION:https://zoom.us/s/1?za\r\n k=abc\r\nX-OLD-LOCATION:"
    )
    with pytest.raises(ValueError, match="host link"):
        calendar.attach(message, ics, Method.REQUEST)
    assert message.get_content_type() == "multipart/alternative"  # left as it was


_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)


@settings(max_examples=60, deadline=None)
@given(summary=_text.filter(str.strip), description=_text, name=_text.filter(str.strip))
def test_ics_bytes_are_what_icalendar_writes(summary: str, description: str, name: str) -> None:
    try:
        values = invitation(summary=summary, description=description, attendee_name=name)
    except ValueError:
        return  # e.g. a host-link marker: refused before any calendar is built
    now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    built = calendar.build_calendar(values, now=now)
    assert calendar.build_ics(values, now=now) == calendar.to_ical(built) == built.to_ical()


def test_folded_lines_cannot_hide_a_host_link() -> None:
    text = "DESCRIPTION:" + "x" * 70 + "https://zoom.us/s/1?za\r\n k=abc"
    assert "zak=" in calendar.unfold(text)


# --- the mails built by the relay -----------------------------------------------------------




def context(public_url: str | None = "https://telemed.clinic.example") -> Any:
    settings = SimpleNamespace(mail_from="Northside telemed <no-reply@clinic.example>", public_url=public_url,
                               fernet_keys=[Fernet.generate_key().decode()])
    profile = ClinicProfile(DEFAULT_CLINIC, DEFAULT_CLINIC, mail_from=settings.mail_from)
    return SimpleNamespace(settings=settings, profile=lambda clinic_id: profile)


def ics_of(message: Message) -> tuple[Calendar, Any]:
    [part] = [p for p in parsed(message).walk() if p.get_content_type() == "application/ics"]
    return parse(part.get_content())


@pytest.mark.parametrize("role", ["patient", "doctor"])
def test_both_recipients_get_the_same_calendar_entry_identity(role: str) -> None:
    message = compose(context(), snapshot(role=role, version=2, kind="updated"), "<m1@telemed.invalid>")
    cal, event = ics_of(message)
    assert str(cal["METHOD"]) == "REQUEST"
    assert str(event["UID"]) == "telemed-A-1001@clinic.example" and int(event["SEQUENCE"]) == 2
    attendee = "grace@example.org" if role == "patient" else "ada@clinic.example"
    assert str(event["ATTENDEE"]) == f"mailto:{attendee}"


def test_doctor_mail_has_the_signed_start_link_but_the_calendar_has_none() -> None:
    message = compose(context(), snapshot(role="doctor"), "<m2@telemed.invalid>")
    text = parsed(message).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "https://telemed.clinic.example/start/" in text and "zak=" not in text
    _, event = ics_of(message)
    entry = calendar.unfold(Calendar.to_ical(event).decode())
    assert "/start/" not in entry and "zak=" not in entry
    assert str(event["LOCATION"]) == JOIN


def test_cancel_mails_carry_a_cancel() -> None:
    for role in ("patient", "doctor"):
        message = compose(context(), snapshot(role=role, kind="cancelled", version=3, desired="cancelled",
                                              zoom_meeting_id=None, join_url=None, passcode=None), "<m@x.example>")
        cal, event = ics_of(message)
        assert str(cal["METHOD"]) == "CANCEL" and int(event["SEQUENCE"]) == 3
        assert str(event["STATUS"]) == "CANCELLED"


def test_reminders_carry_no_calendar() -> None:
    message = compose(context(), snapshot(kind="reminder-24h"), "<m3@telemed.invalid>")
    assert not [p for p in message.walk() if "calendar" in p.get_content_type() or "ics" in p.get_content_type()]
    assert "Reminder" in str(message["Subject"])
