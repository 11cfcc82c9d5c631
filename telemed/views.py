"""Read-only summaries of appointments for people: no links, no passcodes, no contacts."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from store import appointments, outbox


@dataclass(frozen=True)
class AppointmentSummary:
    id: str
    version: int
    desired: str
    state: str
    doctor_id: str
    start_time: str
    zoom_meeting_id: int | None
    meeting_live: bool
    notices: list[str]  # "patient:invite:sent", ...
    attention_reason: str | None


def summarize(session: Session, appointment_id: str) -> AppointmentSummary | None:
    appointment = appointments.get_appointment(session, appointment_id)
    if appointment is None:
        return None
    meeting = appointments.get_meeting(session, appointment_id)
    notices = [
        f"{m.role}:{m.kind}:{m.status}" for m in outbox.messages_for(session, appointment_id)
    ]
    return AppointmentSummary(
        id=appointment.id,
        version=appointment.version,
        desired=appointment.desired,
        state=appointment.state,
        doctor_id=appointment.doctor_id,
        start_time=appointment.start_time.isoformat() if appointment.start_time else "-",
        zoom_meeting_id=meeting.zoom_meeting_id if meeting else None,
        meeting_live=meeting is not None and meeting.deleted_at is None,
        notices=notices,
        attention_reason=appointment.attention_reason,
    )
