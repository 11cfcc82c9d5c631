"""Doctors' own Zoom tokens (user-managed OAuth); the connect flow's state rows are in
``store.oauth_states``.

Tokens are EncryptedText. Every change of a doctor's token pair bumps ``version``; a
refresh writes with a compare-and-swap on that version (``swap_tokens``), so of two
processes that somehow both refreshed, exactly one pair is kept and the other process
learns it lost. ``Doctor.connection`` is kept in step in the same transaction: it is
what people see (``none`` | ``connected`` | ``needs_reconnect``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, Float, update
from sqlmodel import Field, Session, SQLModel, col, select

from telemed.foundation.tenancy import MAX_KEY_LENGTH
from telemed.store import attention, states
from telemed.store.db import Database
from telemed.store.models import Appointment, Doctor, _ts, utcnow
from telemed.store.types import EncryptedText

CONNECTED = "connected"
NEEDS_RECONNECT = "needs_reconnect"
NOT_CONNECTED = "none"
# Appointments parked because their doctor's grant died carry this reason prefix, so a
# reconnect can put exactly those back in the queue.
RECONNECT_REASON_PREFIX = "Zoom connection lost"


class DoctorZoomToken(SQLModel, table=True):
    __tablename__ = "doctor_zoom_tokens"

    doctor_id: str = Field(primary_key=True, foreign_key="doctors.id", max_length=MAX_KEY_LENGTH)
    access_token: str = Field(sa_column=Column(EncryptedText(), nullable=False))
    refresh_token: str = Field(sa_column=Column(EncryptedText(), nullable=False))
    expires_at: datetime = Field(sa_column=_ts())
    lifetime_seconds: float = Field(sa_column=Column(Float(), nullable=False))
    scope: str = Field(default="", max_length=2000)
    version: int = 1
    status: str = Field(default=CONNECTED, max_length=24)
    connected_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    refreshed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


@dataclass(frozen=True, repr=False)
class StoredGrant:
    """A doctor's token pair as stored; ``repr`` hides the tokens."""

    doctor_id: str
    access_token: str
    refresh_token: str
    expires_at: float  # unix seconds
    lifetime: float
    version: int
    status: str

    def __repr__(self) -> str:
        return f"StoredGrant(doctor_id={self.doctor_id!r}, version={self.version}, status={self.status!r})"


@dataclass(frozen=True)
class NewGrant:
    """What the token endpoint handed out, as the store needs it (no zoom import here)."""

    access_token: str
    refresh_token: str
    expires_in: float
    scope: str = ""


# Tokens --------------------------------------------------------------------------------


def load_grant(session: Session, doctor_id: str) -> StoredGrant | None:
    row = session.get(DoctorZoomToken, doctor_id)
    if row is None:
        return None
    return StoredGrant(
        doctor_id=row.doctor_id, access_token=row.access_token, refresh_token=row.refresh_token,
        expires_at=row.expires_at.timestamp(), lifetime=row.lifetime_seconds,
        version=row.version, status=row.status,
    )


def connection_status(session: Session, doctor_id: str) -> str | None:
    """The doctor's token status without decrypting anything (None: no tokens stored)."""
    statement = select(DoctorZoomToken.status).where(DoctorZoomToken.doctor_id == doctor_id)
    return session.exec(statement).first()


def connect(session: Session, doctor_id: str, grant: NewGrant, now: datetime | None = None) -> int:
    """Store a pair from a fresh authorization (a new chain); returns the new version."""
    now = now or utcnow()
    row = session.get(DoctorZoomToken, doctor_id)
    if row is None:
        row = DoctorZoomToken(
            doctor_id=doctor_id, access_token=grant.access_token, refresh_token=grant.refresh_token,
            expires_at=now + timedelta(seconds=grant.expires_in), lifetime_seconds=grant.expires_in,
            scope=grant.scope[:2000], version=1, status=CONNECTED, connected_at=now, updated_at=now,
        )
    else:
        row.access_token, row.refresh_token = grant.access_token, grant.refresh_token
        row.expires_at = now + timedelta(seconds=grant.expires_in)
        row.lifetime_seconds, row.scope = grant.expires_in, grant.scope[:2000]
        row.version += 1
        row.status, row.connected_at, row.refreshed_at, row.updated_at = CONNECTED, now, None, now
    session.add(row)
    _set_connection(session, doctor_id, CONNECTED)
    session.flush()
    return row.version


def swap_tokens(
    session: Session, doctor_id: str, expected_version: int, grant: NewGrant, now: datetime | None = None
) -> int | None:
    """Compare-and-swap a refreshed pair: the new version, or None if the version moved."""
    now = now or utcnow()
    result = session.execute(
        update(DoctorZoomToken)
        .where(
            col(DoctorZoomToken.doctor_id) == doctor_id,
            col(DoctorZoomToken.version) == expected_version,
            col(DoctorZoomToken.status) == CONNECTED,
        )
        .values(
            access_token=grant.access_token, refresh_token=grant.refresh_token,
            expires_at=now + timedelta(seconds=grant.expires_in),
            lifetime_seconds=grant.expires_in, scope=grant.scope[:2000],
            version=expected_version + 1, refreshed_at=now, updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return expected_version + 1 if result.rowcount == 1 else None  # type: ignore[attr-defined]


def mark_needs_reconnect(session: Session, doctor_id: str, expected_version: int | None = None) -> bool:
    """The grant is dead (invalid_grant, app removed). True if this call changed the state.

    With ``expected_version`` it only applies to that generation of the pair, so a
    doctor who reconnected meanwhile is not marked broken by a stale refresh failure.
    """
    statement = update(DoctorZoomToken).where(
        col(DoctorZoomToken.doctor_id) == doctor_id, col(DoctorZoomToken.status) == CONNECTED
    )
    if expected_version is not None:
        statement = statement.where(col(DoctorZoomToken.version) == expected_version)
    result = session.execute(
        statement.values(status=NEEDS_RECONNECT, updated_at=utcnow()).execution_options(
            synchronize_session=False
        )
    )
    changed = result.rowcount == 1  # type: ignore[attr-defined]
    if changed:
        _set_connection(session, doctor_id, NEEDS_RECONNECT)
    return changed


def delete_tokens(session: Session, doctor_id: str) -> bool:
    """Delete a doctor's tokens (the app was deauthorized) and mark them needs_reconnect."""
    row = session.get(DoctorZoomToken, doctor_id)
    if row is None:
        return False
    session.delete(row)
    _set_connection(session, doctor_id, NEEDS_RECONNECT)
    return True


def due_for_refresh(session: Session, before: datetime, limit: int = 500) -> list[str]:
    """Connected doctors whose access token expires before ``before`` (idle ones included)."""
    statement = (
        select(DoctorZoomToken.doctor_id)
        .where(DoctorZoomToken.status == CONNECTED, col(DoctorZoomToken.expires_at) < before)
        .order_by(col(DoctorZoomToken.expires_at))
        .limit(limit)
    )
    return list(session.exec(statement))


def connection_rows(session: Session, clinic_id: str | None = None) -> list[tuple[Doctor, DoctorZoomToken | None]]:
    """Doctors (of one clinic, when given) with their token row, if any."""
    statement = select(Doctor, DoctorZoomToken).join(
        DoctorZoomToken, col(DoctorZoomToken.doctor_id) == col(Doctor.id), isouter=True)
    if clinic_id is not None:
        statement = statement.where(Doctor.clinic_id == clinic_id)
    return [(d, t) for d, t in session.exec(statement.order_by(col(Doctor.id)))]


def park_pending_appointments(session: Session, doctor_id: str, reason: str) -> list[str]:
    """Pending appointments of a doctor whose grant died go to needs_attention."""
    statement = select(Appointment).where(
        Appointment.doctor_id == doctor_id,
        col(Appointment.synced_version) < col(Appointment.version),
        Appointment.state != states.NEEDS_ATTENTION,
        Appointment.desired == states.SCHEDULED,
    ).with_for_update()
    parked = []
    for appointment in session.exec(statement):
        attention.mark_needs_attention(session, appointment, f"{RECONNECT_REASON_PREFIX}: {reason}")
        parked.append(appointment.id)
    return parked


def unpark_after_reconnect(session: Session, doctor_id: str) -> list[str]:
    """After a reconnect, the appointments parked for that reason go back to pending."""
    statement = select(Appointment).where(
        Appointment.doctor_id == doctor_id,
        Appointment.state == states.NEEDS_ATTENTION,
        col(Appointment.attention_reason).startswith(RECONNECT_REASON_PREFIX),
    ).with_for_update()
    return attention.resume_selected(session, statement)


def _set_connection(session: Session, doctor_id: str, connection: str) -> None:
    doctor = session.get(Doctor, doctor_id)
    if doctor is not None and doctor.connection != connection:
        doctor.connection, doctor.updated_at = connection, utcnow()
        session.add(doctor)


class DatabaseTokenStore:
    """The token-store interface ``zoom.user_tokens`` needs, over the database."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def load(self, doctor_id: str) -> StoredGrant | None:
        with self._database.session() as session:
            return load_grant(session, doctor_id)

    def swap(self, doctor_id: str, expected_version: int, grant: NewGrant) -> int | None:
        with self._database.session() as session:
            return swap_tokens(session, doctor_id, expected_version, grant)

    def mark_needs_reconnect(self, doctor_id: str, expected_version: int) -> bool:
        with self._database.session() as session:
            return mark_needs_reconnect(session, doctor_id, expected_version)
