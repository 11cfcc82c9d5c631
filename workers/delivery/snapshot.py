"""What one outbox row needs to be sent, read from the store in one transaction.

``Snapshot`` is a patient's or doctor's notice (or the booking system's webhook), with
secrets kept out of its repr; ``AdminRow`` an admin alert. ``superseded_reason`` and
``message_id`` are the pure rules the relay applies to a snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from telemed.store import notifications, outbox, registrations, states
from telemed.store.db import Database
from telemed.workers.policy.reminder_plan import base_kind, is_reminder
from telemed.workers.policy.retries import PermanentFailure
from telemed.workers.queue.metrics_middleware import EVENT_DRIVEN_KINDS

MAIL_DOMAIN = "telemed.invalid"


@dataclass(frozen=True)
class Snapshot:
    """What one outbox row needs, read in one transaction (secrets kept out of repr)."""

    outbox_id: int
    role: str
    kind: str
    channel: str
    version: int
    appointment_id: str
    current_version: int
    desired: str
    state: str
    doctor_id: str
    patient_name: str = field(repr=False)
    patient_email: str = field(repr=False)
    doctor_name: str
    doctor_email: str = field(repr=False)
    clinic_name: str | None
    timezone: str
    start_time: datetime | None
    duration_minutes: int | None
    zoom_meeting_id: int | None
    join_url: str | None = field(repr=False)  # the meeting's shared passcode link
    passcode: str | None = field(repr=False)
    # What the patient gets: their own registrant link, or the shared link when the meeting
    # has no registration ("off") or its host cannot use it ("fallback").
    patient_join_url: str | None = field(default=None, repr=False)
    patient_id: str = ""
    host: str = ""  # the Zoom host the meeting was made for ("me": the doctor's own token)
    token: str = field(default="", repr=False)  # the row's random part of its Message-ID
    # When the inbox first received this version's event (event-driven notices only): the
    # end-to-end metric's start, read with the rest so sending costs no extra query.
    event_received_at: datetime | None = None

    @property
    def patient_link(self) -> str | None:
        """The patient's Zoom link (a snapshot built without one: the shared link)."""
        return self.patient_join_url or self.join_url

    @property
    def template_kind(self) -> str:
        return base_kind(self.kind)


@dataclass(frozen=True)
class AdminRow:
    """An admin alert's outbox row: its text lives in the ``alerts`` table."""

    alert_id: int
    token: str = field(default="", repr=False)


def superseded_reason(s: Snapshot, now: datetime) -> str | None:
    """Why a notice should no longer go out (a pure rule; see the unit tests)."""
    kind = s.template_kind
    if kind in {"invite", "updated"} or is_reminder(s.kind):
        if s.desired == states.CANCELLED:
            return "appointment cancelled before the notice went out"
        if s.zoom_meeting_id is None:
            return "meeting no longer exists"
    if is_reminder(s.kind):
        if s.current_version != s.version:
            return "appointment moved after the reminder was queued"
        if s.start_time is None or now >= s.start_time:
            return "appointment already started"
    return None


def read_snapshot(database: Database, outbox_id: int) -> Snapshot | AdminRow | None:
    """Everything one delivery needs, in one transaction; None when the row is settled."""
    with database.session() as session:
        view = outbox.delivery_view(session, outbox_id)
    if view is None:
        raise PermanentFailure("no such outbox message")
    message, appointment, doctor, meeting = view.message, view.appointment, view.doctor, view.meeting
    if message.status != states.OUTBOX_PENDING:
        return None
    if message.role == notifications.ADMIN_ROLE and message.channel == "mail":
        return AdminRow(alert_id=message.version, token=message.token)
    if appointment is None:
        raise PermanentFailure("outbox message for an unknown appointment")
    live = meeting is not None and meeting.deleted_at is None
    return Snapshot(
        outbox_id=outbox_id, role=message.role, kind=message.kind, channel=message.channel,
        version=message.version, appointment_id=appointment.id, current_version=appointment.version,
        desired=appointment.desired, state=appointment.state, doctor_id=appointment.doctor_id,
        patient_name=appointment.patient_name, patient_email=appointment.patient_email,
        doctor_name=doctor.name if doctor else "", doctor_email=doctor.email if doctor else "",
        clinic_name=appointment.clinic_name, timezone=appointment.timezone,
        start_time=meeting.start_time if meeting else appointment.start_time,
        duration_minutes=meeting.duration_minutes if meeting else appointment.duration_minutes,
        zoom_meeting_id=meeting.zoom_meeting_id if live and meeting else None,
        join_url=meeting.join_url if live and meeting else None,
        passcode=meeting.passcode if live and meeting else None,
        patient_join_url=registrations.patient_join_url(meeting) if live and meeting else None,
        patient_id=appointment.patient_id,
        host=meeting.host if meeting else "",
        token=message.token,
        event_received_at=view.event_received_at if message.kind in EVENT_DRIVEN_KINDS else None,
    )


def message_id(s: Snapshot) -> str:
    """Stable per outbox row (a retry sends the same one) and unique across installations
    (the row's random token): readable prefix, random tail."""
    return f"<{s.appointment_id}.v{s.version}.{s.role}.{s.kind}.{s.token}@{MAIL_DOMAIN}>"
