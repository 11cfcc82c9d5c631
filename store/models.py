"""The tables. Sensitive values are EncryptedText; no table has a start_url column.

States are plain strings checked by the code that sets them (see ``store.states``),
so a migration is not needed to add one.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Index, String, Text, UniqueConstraint, event
from sqlalchemy import inspect as sa_inspect
from sqlmodel import Field, SQLModel

from telemed.foundation.tenancy import DEFAULT_CLINIC, MAX_CLINIC_ID_LENGTH, MAX_KEY_LENGTH
from telemed.store import patient_index
from telemed.store.types import CIPHER_ATTRIBUTE, EncryptedText, UTCDateTime

# Shared with store.attention, which cuts every reason to fit.
ATTENTION_REASON_MAX_LENGTH = 300


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_token() -> str:
    # 128 random bits in 22 characters: a Message-ID that holds one still fits on its
    # header line, so it is not folded.
    return secrets.token_urlsafe(16)


def _ts(nullable: bool = False, index: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(UTCDateTime(), nullable=nullable, index=index)


class InboxEvent(SQLModel, table=True):
    """Every accepted event, committed before it is queued (principle 1)."""

    __tablename__ = "inbox_events"

    event_id: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)  # scoped (foundation.tenancy)
    clinic_id: str = Field(default=DEFAULT_CLINIC, max_length=MAX_CLINIC_ID_LENGTH, index=True)
    type: str = Field(max_length=32)
    appointment_id: str = Field(max_length=MAX_KEY_LENGTH, index=True)
    version: int
    occurred_at: datetime = Field(sa_column=_ts())
    received_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    payload: str = Field(sa_column=Column(EncryptedText(), nullable=False))
    status: str = Field(default="pending", max_length=16, index=True)
    processed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    note: str | None = Field(default=None, max_length=200)


class Doctor(SQLModel, table=True):
    __tablename__ = "doctors"

    id: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)  # scoped (foundation.tenancy)
    clinic_id: str = Field(default=DEFAULT_CLINIC, max_length=MAX_CLINIC_ID_LENGTH, index=True)
    name: str = Field(max_length=200)
    email: str = Field(max_length=320)
    zoom_user: str = Field(max_length=320)
    connection: str = Field(default="none", max_length=24)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Appointment(SQLModel, table=True):
    """Desired state (from the newest event) next to what Zoom reflects (synced_version)."""

    __tablename__ = "appointments"
    # The admin page lists one clinic's appointments by start time (migration 0010).
    __table_args__ = (Index("ix_appointments_clinic_start", "clinic_id", "start_time"),)

    id: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)  # scoped (foundation.tenancy)
    version: int
    desired: str = Field(max_length=16)  # scheduled | cancelled
    state: str = Field(default="pending", max_length=24, index=True)
    start_time: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    duration_minutes: int | None = None
    timezone: str = Field(max_length=64)
    doctor_id: str = Field(foreign_key="doctors.id", max_length=MAX_KEY_LENGTH, index=True)
    patient_id: str = Field(max_length=128)
    patient_name: str = Field(sa_column=Column(EncryptedText(), nullable=False))
    patient_email: str = Field(sa_column=Column(EncryptedText(), nullable=False))
    # Keyed hashes of the name's words and the e-mail, for the admin page's search
    # (store.patient_index); kept up to date on every ORM write (below). NULL: a row from
    # before migration 0010, indexed on first search (store.patient_search).
    patient_index: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))
    # The clinic (tenant) that owns the appointment; the event's own ``clinic.id`` label
    # (which a default-clinic booking system may set to anything) is ``event_clinic_id``.
    clinic_id: str = Field(default=DEFAULT_CLINIC, max_length=MAX_CLINIC_ID_LENGTH, index=True)
    event_clinic_id: str | None = Field(default=None, max_length=128)
    clinic_name: str | None = Field(default=None, max_length=200)
    synced_version: int = 0
    attention_reason: str | None = Field(default=None, max_length=ATTENTION_REASON_MAX_LENGTH)
    last_event_id: str = Field(max_length=MAX_KEY_LENGTH)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


@event.listens_for(Appointment, "before_insert")
@event.listens_for(Appointment, "before_update")
def _index_patient(_mapper: Any, connection: Any, target: Appointment) -> None:
    """Every ORM write of a patient's name or e-mail also writes their blind index."""
    cipher = getattr(connection.dialect, CIPHER_ATTRIBUTE, None)
    if cipher is None:  # the encrypted columns refuse this write anyway
        return
    state = sa_inspect(target)
    changed = any(state.attrs[name].history.has_changes() for name in ("patient_name", "patient_email"))
    if changed or target.patient_index is None:
        target.patient_index = patient_index.index_value(
            patient_index.index_keys(cipher), target.patient_name, target.patient_email)


class Meeting(SQLModel, table=True):
    """The Zoom meeting of an appointment. The host link is never stored (principle 4)."""

    __tablename__ = "meetings"

    appointment_id: str = Field(primary_key=True, foreign_key="appointments.id", max_length=MAX_KEY_LENGTH)
    zoom_meeting_id: int = Field(sa_column=Column(BigInteger(), nullable=False, unique=True))
    host: str = Field(max_length=320)
    join_url: str = Field(sa_column=Column(EncryptedText(), nullable=False))
    passcode: str = Field(sa_column=Column(EncryptedText(), nullable=False))
    start_time: datetime = Field(sa_column=_ts())
    duration_minutes: int
    timezone: str = Field(max_length=64)
    synced_version: int
    deleted_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    # How the patient joins (store.states.REGISTRATION_*): "off" (the meeting's passcode
    # link), "open" (registration on, the patient not registered yet), "registered" (the
    # patient's own link below), "fallback" (the host cannot use registration: passcode link).
    registration: str = Field(default="off", max_length=16)
    # The doctor the meeting was made for: a reassigned appointment gets a new meeting.
    doctor_id: str | None = Field(default=None, max_length=MAX_KEY_LENGTH)
    registrant_id: str | None = Field(default=None, max_length=64)
    registrant_join_url: str | None = Field(default=None, sa_column=Column(EncryptedText(), nullable=True))
    # zoom.policy.registrant_key of the patient registered: a change of patient re-registers.
    registrant_key: str | None = Field(default=None, sa_column=Column(EncryptedText(), nullable=True))


class RegistrationFallback(SQLModel, table=True):
    """A Zoom host that cannot use registration: one row, and one admin alert, per host."""

    __tablename__ = "registration_fallbacks"

    host: str = Field(primary_key=True, max_length=320)
    reason: str = Field(max_length=200)
    first_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class JoinClick(SQLModel, table=True):
    """One opening of a patient's signed /join/ link: when, which appointment, what they
    got. No IP address or browser detail (the web server's access log, if the operator
    keeps one, is where those live)."""

    __tablename__ = "join_clicks"

    id: int | None = Field(default=None, primary_key=True)
    appointment_id: str = Field(max_length=MAX_KEY_LENGTH, index=True)
    at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    outcome: str = Field(max_length=24)  # redirected | cancelled | over | not_ready | not_yours


class ProvisioningIntent(SQLModel, table=True):
    """Committed before a Zoom create, so a retry after a crash adopts instead of duplicating.

    ``open_for`` holds the appointment id while the intent is open and NULL afterwards:
    the unique constraint allows one open intent per appointment (NULLs never collide).
    """

    __tablename__ = "provisioning_intents"

    id: int | None = Field(default=None, primary_key=True)
    appointment_id: str = Field(max_length=MAX_KEY_LENGTH, index=True)
    open_for: str | None = Field(default=None, max_length=MAX_KEY_LENGTH, unique=True)
    marker: str = Field(max_length=64)
    host: str = Field(max_length=320)
    status: str = Field(default="open", max_length=16)
    attempts: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    closed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class OutboxMessage(SQLModel, table=True):
    """A notification owed to someone, unique per (appointment, version, role, kind).

    Content is rendered at send time from the store (and, for the doctor, a fresh start
    link from Zoom), so nothing secret waits here.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("appointment_id", "version", "role", "kind", "channel", name="uq_outbox_key"),
        Index("ix_outbox_status_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    appointment_id: str = Field(max_length=MAX_KEY_LENGTH, index=True)
    version: int
    role: str = Field(max_length=16)  # patient | doctor | admin
    kind: str = Field(max_length=24)  # invite | updated | cancelled | ...
    channel: str = Field(default="mail", max_length=16)
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    sent_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    message_ref: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    # Random per row, made once: a retry of the row sends the same Message-ID, and no other
    # installation (or this database restored elsewhere, for new rows) makes the same one.
    token: str = Field(default_factory=new_token, max_length=32)
    # Set while a worker is sending this row (it also holds the row's Redis lock): a newer
    # notice to the same recipient waits, an older one is superseded.
    sending_since: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
