"""Appointments, their doctors and meetings: reads and the writes the pipeline makes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from store import states
from store.models import Appointment, Doctor, Meeting, utcnow


def get_appointment(session: Session, appointment_id: str, *, for_update: bool = False) -> Appointment | None:
    statement = select(Appointment).where(Appointment.id == appointment_id)
    if for_update:
        statement = statement.with_for_update()
    return session.exec(statement).first()


def upsert_doctor(session: Session, *, id: str, name: str, email: str, zoom_user: str) -> Doctor:
    doctor = session.get(Doctor, id)
    if doctor is None:
        doctor = Doctor(id=id, name=name, email=email, zoom_user=zoom_user)
    elif (doctor.name, doctor.email, doctor.zoom_user) != (name, email, zoom_user):
        doctor.name, doctor.email, doctor.zoom_user = name, email, zoom_user
        doctor.updated_at = utcnow()
    else:
        return doctor  # unchanged: no write (every booking names its doctor)
    session.add(doctor)
    session.flush()  # appointments reference it; the unit of work does not order by FK
    return doctor


def get_doctor(session: Session, doctor_id: str) -> Doctor | None:
    return session.get(Doctor, doctor_id)


def save(session: Session, *rows: object) -> None:
    for row in rows:
        if hasattr(row, "updated_at"):
            row.updated_at = utcnow()  # type: ignore[attr-defined]
        session.add(row)
    session.flush()


def get_meeting(session: Session, appointment_id: str) -> Meeting | None:
    return session.get(Meeting, appointment_id)


def live_meeting(session: Session, appointment_id: str) -> Meeting | None:
    meeting = session.get(Meeting, appointment_id)
    return meeting if meeting is not None and meeting.deleted_at is None else None


def unsynced_appointment_ids(session: Session, older_than: datetime, limit: int = 1000) -> list[str]:
    """Appointments whose Zoom state lags their desired state (for the reconciler)."""
    statement = (
        select(Appointment.id)
        .where(
            col(Appointment.synced_version) < col(Appointment.version),
            Appointment.state != states.NEEDS_ATTENTION,
            col(Appointment.updated_at) < older_than,
        )
        .order_by(col(Appointment.updated_at))
        .limit(limit)
    )
    return list(session.exec(statement))


def list_appointments(session: Session, ids: Sequence[str] | None = None) -> list[Appointment]:
    statement = select(Appointment).order_by(col(Appointment.created_at), col(Appointment.id))
    if ids is not None:
        statement = statement.where(col(Appointment.id).in_(list(ids)))
    return list(session.exec(statement))


def live_meetings(session: Session) -> list[Meeting]:
    return list(session.exec(select(Meeting).where(col(Meeting.deleted_at).is_(None))))
