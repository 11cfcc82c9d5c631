"""Appointments, their doctors and meetings: reads and the writes the pipeline makes."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select  # sqlmodel's select types at most four entities
from sqlmodel import Session, col, func, select

from telemed.foundation.tenancy import DEFAULT_CLINIC
from telemed.store import states
from telemed.store.db import insert_unless_exists
from telemed.store.models import Appointment, Doctor, Meeting, utcnow
from telemed.store.zoom_tokens import DoctorZoomToken

# Built once: building and keying a statement costs more CPU than PostgreSQL spends on it.
_APPOINTMENT = select(Appointment).where(col(Appointment.id) == bindparam("appointment_id"))
_APPOINTMENT_FOR_UPDATE = _APPOINTMENT.with_for_update()


def get_appointment(session: Session, appointment_id: str, *, for_update: bool = False) -> Appointment | None:
    statement = _APPOINTMENT_FOR_UPDATE if for_update else _APPOINTMENT
    return session.exec(statement, params={"appointment_id": appointment_id}).first()


def upsert_doctor(session: Session, *, id: str, name: str, email: str, zoom_user: str,
                  clinic_id: str = DEFAULT_CLINIC) -> Doctor:
    """The doctor under its scoped key ``id`` (foundation.tenancy), made or brought up to date."""
    doctor = session.get(Doctor, id)
    if doctor is None:
        # Two bookings for a new doctor may arrive at once: the loser of the insert race
        # updates the winner's row instead of failing on the primary key.
        created = insert_unless_exists(
            session, Doctor(id=id, clinic_id=clinic_id, name=name, email=email, zoom_user=zoom_user), ["id"])
        if created is not None:
            return created
        doctor = session.get(Doctor, id, populate_existing=True)
        assert doctor is not None
    if (doctor.name, doctor.email, doctor.zoom_user) == (name, email, zoom_user):
        return doctor  # unchanged: no write (every booking names its doctor)
    doctor.name, doctor.email, doctor.zoom_user = name, email, zoom_user
    doctor.updated_at = utcnow()
    session.add(doctor)
    session.flush()
    return doctor


def get_doctor(session: Session, doctor_id: str) -> Doctor | None:
    return session.get(Doctor, doctor_id)


def doctor_ids_with_zoom_user(session: Session, zoom_user: str) -> list[str]:
    """Doctors whose configured Zoom user is ``zoom_user`` (an id or an email; case ignored)."""
    statement = select(Doctor.id).where(func.lower(col(Doctor.zoom_user)) == zoom_user.lower())
    return list(session.exec(statement))


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


def unsynced_appointment_ids(session: Session, older_than: datetime, limit: int = 1000,
                             exclude_clinics: Collection[str] = ()) -> list[str]:
    """Appointments whose Zoom state lags their desired state, not of ``exclude_clinics``
    (for the reconciler)."""
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
    if exclude_clinics:
        statement = statement.where(col(Appointment.clinic_id).not_in(list(exclude_clinics)))
    return list(session.exec(statement))


def live_meetings(session: Session) -> list[Meeting]:
    return list(session.exec(select(Meeting).where(col(Meeting.deleted_at).is_(None))))


def count_synced_appointments(session: Session) -> int:
    """Appointments whose Zoom state reflects their newest version."""
    statement = select(func.count()).select_from(Appointment).where(
        col(Appointment.synced_version) >= col(Appointment.version))
    return int(session.exec(statement).one())


@dataclass(frozen=True)
class SyncView:
    """An appointment with its meeting and what decides who would host a new one."""

    appointment: Appointment
    meeting: Meeting | None
    doctor_connection: str | None
    zoom_user: str | None
    token_status: str | None  # the doctor's own Zoom tokens (None: none stored)


_SYNC_VIEW = (
    sa_select(Appointment, Meeting, col(Doctor.connection), col(Doctor.zoom_user), col(DoctorZoomToken.status))
    .outerjoin(Meeting, col(Meeting.appointment_id) == col(Appointment.id))
    .outerjoin(Doctor, col(Doctor.id) == col(Appointment.doctor_id))
    .outerjoin(DoctorZoomToken, col(DoctorZoomToken.doctor_id) == col(Appointment.doctor_id))
    .where(col(Appointment.id) == bindparam("appointment_id"))
)


def sync_view(session: Session, appointment_id: str) -> SyncView | None:
    """What a sync reads, in one statement."""
    row = session.execute(_SYNC_VIEW, {"appointment_id": appointment_id}).first()
    if row is None:
        return None
    appointment, meeting, connection, zoom_user, token_status = row
    return SyncView(appointment, meeting, connection, zoom_user, token_status)
