"""Accepted means delivered: every event the door accepts goes all the way through.

Hypothesis makes events from hostile parts (any unicode in names, internationalised and
odd e-mail addresses, times at the ends of the range with any offset, every IANA zone).
Whatever the door's own validation (``parse_event``, behind ``POST /v1/events`` and
``telemed publish``) accepts is then stored on the test's database (SQLite, and
PostgreSQL when configured) by the real ``apply_event``, read back, and turned into the
patient's and the doctor's mail by the notifier's real ``compose``: rendered text and
HTML, the iCalendar invitation, the doctor's signed start link. The mail is written as
bytes with ``email.policy.SMTP`` and sent to a real SMTP server that offers no SMTPUTF8.
Nothing of that may fail.
"""

from __future__ import annotations

import copy
import email
import email.policy
import itertools
import json
from datetime import UTC, datetime, timedelta, timezone
from email.message import Message
from typing import Any
from zoneinfo import available_timezones

import icalendar
from cryptography.fernet import Fernet
from hypothesis import event, example, given, note
from hypothesis import strategies as st

from telemed.events import InvalidEvent
from telemed.events.models import CancelledEvent, event_to_json
from telemed.events.parsing import Event, parse_event
from telemed.events.rules import EARLIEST
from telemed.foundation import start_tokens
from telemed.settings import load_settings
from telemed.store import inbox
from telemed.store.db import Database
from telemed.store.models import Appointment, Doctor
from telemed.workers.apply_event import apply_event
from telemed.workers.context import WorkerContext
from telemed.workers.delivery.mail import compose
from telemed.workers.delivery.snapshot import Snapshot
from telemed.workers.notifier.mail import SmtpChannel
from telemed.workers.policy.reminder_plan import parse_offsets, plan, reminder_kind
from tests.support.contexts import worker_context
from tests.support.fuzz.settings import fuzz
from tests.support.smtp import SmtpTestServer

# Every start time in the range is "in the future" for the door.
DOOR_NOW = EARLIEST - timedelta(days=1)
ZONES = sorted(available_timezones())
PUBLIC_URL = "https://telemed.example"
_ids = itertools.count(1)

HOSTILE = ["Jo\u0085e", "Jo\u009be", "Ann\u202egpj.exe", "Dr\u200bWho", "\u2066Eve\u2069", "\ufeffBob",
           "Ann\u200eX", "Dr\ue000X", "x\u2028y", "Zoë\u200d", "=?utf-8?q?Mallory?=", "Bob <evil@x.example>",
           "\"; DROP TABLE doctors; --", "{{7*7}}", "<b>Eve</b>", "Dr.\u3000Ada", "e\u0301\u0301\u0301"]
# Plausible values: what the door should take, in any script, at the edges of the range.
names = st.text(alphabet=st.characters(categories=["L", "M", "N", "P", "S", "Zs"]), min_size=1, max_size=60) | \
    st.sampled_from(["Dr.\u3000Ada", "e\u0301\u0301\u0301", "=?utf-8?q?Mallory?=", "Bob <evil@x.example>",
                     "\"; DROP TABLE doctors; --", "{{7*7}}", "<b>Eve</b>", "x" * 199 + "\U0001f642"])
ascii_locals = st.from_regex(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,30}(\.[A-Za-z0-9_+-]{1,10})?", fullmatch=True)
labels = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789äöüßéèçñøåæłżšđ", min_size=1, max_size=12)
domains = st.sampled_from(["example.org", "bücher.example", "MAIL.Bücher.example", "xn--bcher-kva.example",
                           "例え.jp", "пример.рф", "ａｂｃ.example"]) | \
    st.builds(lambda label, tld: f"{label}.{tld}", labels, st.sampled_from(["example", "de", "org"]))
addresses = st.builds(lambda local, domain: f"{local}@{domain}", ascii_locals, domains)
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes)))
times = st.sampled_from(["2999-12-31T23:59:59+00:00", "2999-12-31T23:59:59.999999+00:01", "3000-01-01T09:00:00+14:00",
                         "2000-01-01T00:00:00+00:00", "2000-01-01T13:59:00+13:59"]) | \
    st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2999, 12, 30), timezones=offsets) \
    .map(datetime.isoformat)

# Hostile values: the door must refuse them, or else the pipeline must carry them.
hostile_names = st.sampled_from(
    ["Jo\u0085e", "Jo\u009be", "Ann\u202egpj.exe", "Dr\u200bWho", "\u2066Eve\u2069", "\ufeffBob", "Ann\u200eX",
     "Dr\ue000X", "x\u2028y", "Zoë\u200d", "Dr\U000e0041X"]) | \
    st.text(min_size=1, max_size=40) | \
    st.builds(lambda a, c, b: a + c + b, st.sampled_from(["Grace", "محمد", "李"]), st.characters(),
              st.sampled_from(["Hopper", "علي", "小龍"]))
hostile_addresses = st.builds(
    lambda local, domain: f"{local}@{domain}",
    ascii_locals | st.sampled_from(["jörg", "δοκιμή", "用户", "a\u0085b", "\"quoted\"", "a..b"]),
    domains | st.sampled_from(["sub.δοκιμή.gr", "a_b.example", "-x.example", "localhost", "x.test"])
    | st.builds(lambda label: f"{label}.example", st.text(alphabet=st.characters(categories=["Ll", "Lo"]),
                                                            min_size=1, max_size=12)),
)
hostile_times = st.sampled_from(["9999-12-31T23:00:00+00:00", "9999-12-31T23:59:59-01:00", "1999-12-31T23:59:59Z",
                                 "3000-01-01T00:00:00Z", "2999-12-31T23:00:00-02:00", "0001-01-01T00:00:00+01:00"]) | \
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets) \
    .map(datetime.isoformat)

NAME_FIELDS = [("doctor", "name"), ("patient", "name"), ("clinic", "name")]
ADDRESS_FIELDS = [("doctor", "email"), ("patient", "email"), ("doctor", "zoom_user")]
TIME_FIELDS = [("start_time",), ("occurred_at",)]


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """A plausible event, often with one field hostile."""
    kind = draw(st.sampled_from(["appointment.booked", "appointment.rescheduled", "appointment.cancelled"]))
    doctor: dict[str, Any] = {"id": draw(st.sampled_from(["D-1", "D-2"])), "name": draw(names),
                              "email": draw(addresses)}
    zoom_user = draw(st.one_of(st.none(), addresses, st.just("AbC_12-xyz")))
    if zoom_user is not None:
        doctor["zoom_user"] = zoom_user
    appointment: dict[str, Any] = {
        "id": "P-0", "version": draw(st.integers(1, 2**31 - 1)), "timezone": draw(st.sampled_from(ZONES)),
        "doctor": doctor, "patient": {"id": "p-1", "name": draw(names), "email": draw(addresses)},
        "clinic": {"id": "c-1", "name": draw(names)},
    }
    if draw(st.booleans()):
        del appointment["clinic"]
    if kind != "appointment.cancelled" or draw(st.booleans()):
        appointment["start_time"] = draw(times)
        appointment["duration_minutes"] = draw(st.sampled_from([1, 30, 1439, 1440]) | st.integers(1, 1440))
    data = {"event_id": "E-0", "type": kind, "occurred_at": draw(times), "appointment": appointment}
    hostile = draw(st.sampled_from(["none", "name", "address", "time"]))
    if hostile == "name":
        owner, field = draw(st.sampled_from(NAME_FIELDS))
        appointment.setdefault(owner, {"id": "c-1"})[field] = draw(hostile_names)
    elif hostile == "address":
        owner, field = draw(st.sampled_from(ADDRESS_FIELDS))
        appointment[owner][field] = draw(hostile_addresses)
    elif hostile == "time":
        (field,) = draw(st.sampled_from(TIME_FIELDS))
        (data if field == "occurred_at" else appointment)[field] = draw(hostile_times)
    return data


def _settings_and_keys() -> tuple[WorkerContext, list[str]]:
    key = Fernet.generate_key().decode()
    settings = load_settings(secret_keys=key, public_url=PUBLIC_URL)
    return worker_context(settings), settings.fernet_keys


CTX, KEYS = _settings_and_keys()


def _store(database: Database, data: dict[str, Any], parsed: Event) -> tuple[Appointment, Doctor]:
    """Into the inbox as ``publish`` writes it, then folded in by the worker's real step."""
    with database.session() as session:
        inbox.record_event(
            session, event_id=parsed.event_id, type=parsed.type, appointment_id=parsed.appointment.id,
            version=parsed.appointment.version, occurred_at=parsed.occurred_at,
            payload=json.dumps(event_to_json(parsed), separators=(",", ":")),
        )
    assert apply_event(database, parsed.event_id) == parsed.appointment.id
    with database.session() as session:
        appointment = session.get(Appointment, parsed.appointment.id)
        assert appointment is not None
        doctor = session.get(Doctor, appointment.doctor_id)
        assert doctor is not None
        session.expunge_all()
    return appointment, doctor


def _snapshot(appointment: Appointment, doctor: Doctor, role: str, kind: str) -> Snapshot:
    return Snapshot(
        outbox_id=1, role=role, kind=kind, channel="mail", version=appointment.version,
        appointment_id=appointment.id, current_version=appointment.version, desired=appointment.desired,
        state=appointment.state, doctor_id=doctor.id, patient_name=appointment.patient_name,
        patient_email=appointment.patient_email, doctor_name=doctor.name, doctor_email=doctor.email,
        clinic_name=appointment.clinic_name, timezone=appointment.timezone, start_time=appointment.start_time,
        duration_minutes=appointment.duration_minutes, zoom_meeting_id=85012345678,
        join_url="https://us02web.zoom.us/j/85012345678?pwd=Q2x1c3RlcjE", passcode="Xy12ab",
    )


def _calendar(message: Message) -> icalendar.Calendar:
    [part] = [p for p in message.walk() if p.get_content_type() == "application/ics"]
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return icalendar.Calendar.from_ical(payload)


def _wire(message: Message, to: str) -> None:
    """The bytes a mail server gets, read back as a mail client would."""
    wire = message.as_bytes(policy=email.policy.SMTP)
    parsed = email.message_from_bytes(wire, policy=email.policy.default)
    assert parsed["To"].addresses[0].addr_spec == to


def _deliver(message: Message, to: str, smtp: SmtpTestServer) -> None:
    before = len(smtp.received)
    SmtpChannel(smtp.url(), timeout=10, local_hostname="localhost").send(message)  # the server offers no SMTPUTF8
    received = smtp.wait_for(before + 1)[-1]
    assert smtp.received[-1].rcpt_tos == [to]
    assert received["Message-ID"] == message["Message-ID"]


@fuzz(100, fixtures=True)
@given(data=events())
@example(data={"event_id": "E-0", "type": "appointment.booked", "occurred_at": "2026-01-01T00:00:00Z", "appointment": {
    "id": "P-0", "version": 1, "timezone": "Pacific/Kiritimati", "start_time": "2999-12-31T23:59:59+00:00",
    "duration_minutes": 1440, "clinic": {"id": "c-1", "name": "Zoë\u3000Clinic"},
    "doctor": {"id": "D-1", "name": "Dr. Jörg", "email": "doc@bücher.example"},
    "patient": {"id": "p-1", "name": "محمد علي", "email": "grace@MAIL.bücher.example"}}})
@example(data={"event_id": "E-0", "type": "appointment.rescheduled", "occurred_at": "2000-01-01T00:00:00Z", "appointment": {
    "id": "P-0", "version": 2, "timezone": "Etc/GMT+12", "start_time": "2000-01-01T00:00:00+00:00",
    "duration_minutes": 1, "doctor": {"id": "D-1", "name": "Ada", "email": "a@example.org", "zoom_user": "AbC_12-xyz"},
    "patient": {"id": "p-1", "name": "x" * 199 + "\U0001f642", "email": "x@xn--bcher-kva.example"}}})
def test_whatever_the_door_accepts_is_stored_rendered_signed_and_sent(
    data: dict[str, Any], database: Database, smtp: SmtpTestServer,
) -> None:
    n = next(_ids)
    smtp.clear()  # the server is shared by every example: keep only this one's mail
    data = copy.deepcopy(data)
    data["event_id"], data["appointment"]["id"] = f"E-{n}", f"P-{n}"
    try:
        parsed = parse_event(data, now=DOOR_NOW)
    except InvalidEvent as exc:
        note(f"refused at the door: {exc.errors}")
        event("refused at the door")
        return
    event("accepted: " + parsed.type)
    appointment, doctor = _store(database, data, parsed)
    assert doctor.email == parsed.appointment.doctor.email and doctor.email.isascii()
    assert appointment.patient_email == parsed.appointment.patient.email
    assert appointment.patient_name == parsed.appointment.patient.name
    cancelled = isinstance(parsed, CancelledEvent)
    if appointment.start_time is not None and appointment.duration_minutes is not None:
        start = appointment.start_time
        assert start == parsed.appointment.start_time
        expires = start_tokens.expiry_for(start, appointment.duration_minutes)
        token = start_tokens.issue(KEYS, appointment_id=appointment.id, doctor_id=doctor.id, expires_at=expires)
        claim = start_tokens.verify(KEYS, token, now=start)
        assert (claim.appointment_id, claim.doctor_id) == (appointment.id, doctor.id)
        plan(start - timedelta(hours=1), start, parse_offsets("24h,1h,15m"), told_at=start - timedelta(days=2))
    kinds = ["cancelled"] if cancelled else ["invite", "updated"] + (
        [reminder_kind(3600)] if appointment.start_time is not None else [])
    if not cancelled and appointment.start_time is None:
        return  # a booking always carries a time (the door's rule); nothing to send without one
    for role, to in (("patient", appointment.patient_email), ("doctor", doctor.email)):
        for kind in kinds:
            message = compose(CTX, _snapshot(appointment, doctor, role, kind), f"<{n}.{role}.{kind}@telemed.example>")
            if kind in {"invite", "updated", "cancelled"}:
                vevent = _calendar(message).walk("VEVENT")[0]
                if appointment.start_time is not None:
                    # iCalendar's DATE-TIME has whole seconds.
                    assert vevent.decoded("DTSTART") == appointment.start_time.astimezone(UTC).replace(microsecond=0)
                if role == "doctor" and not cancelled:
                    assert f"{PUBLIC_URL}/start/" in "".join(
                        str(p.get_payload(decode=True), "utf-8") for p in message.walk() if not p.is_multipart())
            _wire(message, to)
            if kind == kinds[0]:  # the envelope is the same for every kind: one real send per role
                _deliver(message, to, smtp)
