"""Two clinics' worth of data for the admin page's tests, written through the real code.

Events go through the publisher into the inbox and are applied by the pipeline's own
``apply_event``; the rest (a meeting, notices, a start-link disclosure, a join click, a
reminder, an alert, dead letters) through the store's functions and Dramatiq's Redis
layout. Both clinics use the same appointment and doctor ids (ids are per clinic), and
clinic B's patients all carry a canary name and address that clinic A's admin must
never see.
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from dramatiq.message import Message
from sqlmodel import col, select

from telemed.events.publish import Publisher
from telemed.foundation.tenancy import scoped
from telemed.samples import booking
from telemed.store import appointments, attention, outbox, registrations
from telemed.store import notifications as notes
from telemed.store.db import Database
from telemed.store.models import Meeting, OutboxMessage
from telemed.store.notifications import Alert
from telemed.workers.apply_event import apply_event

CANARY_NAME = "Zebulon Canarybird"
CANARY_EMAIL = "zebulon.canarybird@b-clinic.example"
CANARY_WORD = "Canarybird"
A_PATIENTS = ["Grace Hopper", "Émile Zola", "Ada King", "Alan Mathison"]
DOCTORS_OF = {"a": [("D-1", "Dr. Ada Lovelace"), ("D-2", "Dr. Alan Turing")],
              "b": [("D-1", "Dr. Barbara Liskov"), ("D-9", "Dr. Only In B")]}


@dataclass
class Clinic:
    clinic_id: str
    ids: list[str] = field(default_factory=list)  # the clinic's own appointment ids, by start time
    starts: dict[str, datetime] = field(default_factory=dict)
    patients: dict[str, str] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    letters: dict[str, str] = field(default_factory=dict)  # what -> dead letter message id
    meeting_id: int | None = None


def _publish_and_apply(database: Database, clinic_id: str, event: dict[str, Any]) -> None:
    Publisher(database=database, enqueue=lambda _: None).publish(event, clinic_id=clinic_id)
    apply_event(database, scoped(clinic_id, event["event_id"]))


def seed_clinic(database: Database, clinic_id: str, *, first_start: datetime, count: int,
                extra: tuple[str, ...] = (), canary: bool = False) -> Clinic:
    """``count`` appointments ``A-001``... an hour apart from ``first_start``, plus ``extra``
    ids after them; in clinic b every patient is the canary. A start in the past is booked
    for tomorrow and then moved back in the store (the door accepts only future starts)."""
    clinic = Clinic(clinic_id)
    doctors = DOCTORS_OF[clinic_id]
    for n, appointment_id in enumerate([f"A-{i:03d}" for i in range(1, count + 1)] + list(extra)):
        start = first_start + timedelta(hours=n)
        patient = CANARY_NAME if canary else A_PATIENTS[n % len(A_PATIENTS)]
        tomorrow = datetime.now(UTC) + timedelta(days=1)
        event = booking(appointment_id, 1, max(start, tomorrow), doctor=doctors[n % len(doctors)],
                        patient=patient, domain=f"{clinic_id}-clinic.example")
        first = unicodedata.normalize("NFKD", patient.split()[0]).encode("ascii", "ignore").decode().lower()
        email = CANARY_EMAIL if canary else f"{first}.{appointment_id.lower()}@{clinic_id}-clinic.example"
        event["appointment"]["patient"]["email"] = email
        _publish_and_apply(database, clinic_id, event)
        clinic.emails[appointment_id] = email
        if start < tomorrow:
            with database.session() as s:
                row = appointments.get_appointment(s, scoped(clinic_id, appointment_id), for_update=True)
                assert row is not None
                row.start_time = start
                s.add(row)
        clinic.ids.append(appointment_id)
        clinic.starts[appointment_id] = start
        clinic.patients[appointment_id] = patient
    return clinic


def story(database: Database, clinic: Clinic, appointment_id: str, meeting_id: int) -> None:
    """Give one appointment a whole story: a second version, a meeting, notices (one failed
    naming the appointment's key), a reminder, a start-link disclosure, a join click, an alert."""
    cid = clinic.clinic_id
    key = scoped(cid, appointment_id)
    start = clinic.starts[appointment_id] + timedelta(minutes=30)
    doctor = DOCTORS_OF[cid][0]
    moved = booking(appointment_id, 2, start, type="appointment.rescheduled", doctor=doctor,
                    patient=clinic.patients[appointment_id], domain=f"{cid}-clinic.example")
    moved["appointment"]["patient"]["email"] = clinic.emails[appointment_id]
    _publish_and_apply(database, cid, moved)
    clinic.starts[appointment_id] = start
    doctor_key = scoped(cid, doctor[0])
    with database.session() as s:
        appointments.save(s, Meeting(
            appointment_id=key, zoom_meeting_id=meeting_id, host=f"host@{cid}-clinic.example",
            join_url=f"https://zoom.us/j/{meeting_id}?pwd=JOINCANARY{cid}", passcode=f"PASSCANARY{cid}",
            start_time=start, duration_minutes=30, timezone="Europe/Berlin", synced_version=2,
            registration="registered", doctor_id=doctor_key, registrant_id=f"reg-{cid}",
            registrant_join_url=f"https://zoom.us/w/{meeting_id}?tk=REGCANARY{cid}"))
        sent = outbox.add_message(s, appointment_id=key, version=1, role="patient", kind="invite")
        assert sent is not None and sent.id is not None
        outbox.mark_sent_if_pending(s, sent.id, "<ref@example>")
        outbox.add_message(s, appointment_id=key, version=2, role="doctor", kind="updated")
        failed = outbox.add_message(s, appointment_id=key, version=2, role="patient", kind="updated")
        assert failed is not None
        outbox.mark_attempt_failed(s, failed, f"550 mailbox refused for {key}", final=True)
        notes.record_reminder(s, appointment_id=key, version=2, role="patient", offset_seconds=3600,
                              status=notes.REMINDER_QUEUED)
        notes.record_disclosure(s, appointment_id=key, doctor_id=doctor_key, principal=f"doctor:{doctor_key}",
                                via=notes.VIA_START_LINK)
        notes.record_disclosure(s, appointment_id=key, doctor_id=doctor_key, principal="admin key:abcdef0123",
                                via=notes.VIA_API)
        registrations.record_join_click(s, key, "redirected")
        alert_id = notes.record_alert(s, "needs_attention", f"Appointment {key} needs attention ({cid})",
                                      "body", key)
        row = s.get(Alert, alert_id)
        assert row is not None
        row.clinic_id = cid
        s.add(row)
    clinic.meeting_id = meeting_id


def park(database: Database, clinic: Clinic, appointment_id: str, reason: str) -> None:
    with database.session() as s:
        row = appointments.get_appointment(s, scoped(clinic.clinic_id, appointment_id), for_update=True)
        assert row is not None
        attention.mark_needs_attention(s, row, reason)


def dead_letters(database: Database, client: redis.Redis, namespace: str, clinic: Clinic,
                 appointment_id: str) -> None:
    """Two dead letters of the clinic: a sync by appointment key, a delivery by outbox row."""
    key = scoped(clinic.clinic_id, appointment_id)
    with database.session() as s:
        row_id = s.exec(select(col(OutboxMessage.id)).where(
            col(OutboxMessage.appointment_id) == key).order_by(col(OutboxMessage.id))).first()
    for what, queue, actor, args in (("sync", "meetings", "sync_meeting", (key,)),
                                     ("delivery", "notifications", "deliver_notification", (row_id,))):
        message = Message(queue_name=queue, actor_name=actor, args=args, kwargs={},
                          options={"failure": f"PermanentFailure: gave up on {key} ({clinic.clinic_id})"})
        client.zadd(f"{namespace}:{queue}.XQ", {message.message_id: time.time() * 1000})
        client.hset(f"{namespace}:{queue}.XQ.msgs", message.message_id, message.encode())
        clinic.letters[what] = message.message_id
