"""One read model of an appointment's status, for people: the CLI and the access API.

No links, passcodes or patient contacts: only ids, states and what was sent to whom. Each
surface formats it its own way (``telemed status``, ``GET /v1/appointments/{id}``); what
the fields mean is decided here, once. (The admin page, which shows one clinic's
appointments to its admins, reads store.appointment_list and store.appointment_detail.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from telemed.store import outbox
from telemed.store.models import Appointment, Meeting


@dataclass(frozen=True)
class Notice:
    """One outbox message: who is (or was) told what, on which channel, and how it went."""

    role: str
    kind: str
    channel: str
    status: str


@dataclass(frozen=True)
class AppointmentStatus:
    id: str
    version: int
    synced_version: int
    desired: str  # scheduled | cancelled
    state: str  # store.states: pending | provisioned | cancelled | needs_attention | ...
    start_time: datetime | None
    duration_minutes: int | None
    timezone: str
    doctor_id: str
    clinic_id: str | None
    attention_reason: str | None
    zoom_meeting_id: int | None  # the recorded meeting, live or deleted (None: never created)
    meeting_live: bool  # recorded and not deleted
    # How the patient joins (store.states.REGISTRATION_*): "registered" (their own link),
    # "fallback" (the host cannot use registration: the passcode link), "off", "open"; None: no meeting.
    patient_join: str | None = None
    notices: tuple[Notice, ...] = ()  # only when asked for (``with_notices``)

    @property
    def live_zoom_meeting_id(self) -> int | None:
        return self.zoom_meeting_id if self.meeting_live else None


def appointment_status(session: Session, appointment_id: str, *, with_notices: bool = True) -> AppointmentStatus | None:
    found = _statuses(session, _STATUS.where(col(Appointment.id) == appointment_id))
    if not found:
        return None
    status = found[0]
    if not with_notices:
        return status
    notices = tuple(Notice(m.role, m.kind, m.channel, m.status) for m in outbox.messages_for(session, appointment_id))
    return replace(status, notices=notices)


def recent_appointment_statuses(session: Session, limit: int = 100) -> list[AppointmentStatus]:
    """The most recently changed appointments first, without notices (every clinic's: for operators)."""
    return _statuses(session, _STATUS.order_by(col(Appointment.updated_at).desc()).limit(limit))


_STATUS = select(Appointment, Meeting).join(Meeting, col(Meeting.appointment_id) == col(Appointment.id), isouter=True)


def _statuses(session: Session, statement: Any) -> list[AppointmentStatus]:
    return [
        AppointmentStatus(
            id=a.id, version=a.version, synced_version=a.synced_version, desired=a.desired, state=a.state,
            start_time=a.start_time, duration_minutes=a.duration_minutes, timezone=a.timezone,
            doctor_id=a.doctor_id, clinic_id=a.clinic_id, attention_reason=a.attention_reason,
            zoom_meeting_id=m.zoom_meeting_id if m is not None else None,
            meeting_live=m is not None and m.deleted_at is None,
            patient_join=m.registration if m is not None else None,
        )
        for a, m in session.exec(statement)
    ]
