"""Notification bookkeeping: start-link audits, reminders, the webhook switch, admin alerts.

Nothing here holds a link: an audit row says who saw a start link, when and for which
appointment, never the URL (DESIGN principle 4). Alert texts are written by our own code
and must never carry secrets either.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import Column, Text, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from telemed.foundation.tenancy import DEFAULT_CLINIC, MAX_CLINIC_ID_LENGTH, MAX_KEY_LENGTH, clinic_of
from telemed.store import states
from telemed.store.models import Appointment, InboxEvent, OutboxMessage, _ts, utcnow

# How a start link was disclosed.
VIA_START_LINK = "start_link"  # a doctor clicked the signed /start/{token} link
VIA_API = "api"  # GET /v1/appointments/{id}/meeting
VIA_MAIL = "mail"  # a fresh Zoom start_url written into the doctor's mail

# Reminder decisions.
REMINDER_QUEUED = "queued"
REMINDER_SKIPPED = "skipped"

# Admin alerts travel through the outbox as role "admin", version = the alert's id.
ADMIN_ROLE = "admin"
NO_APPOINTMENT = "-"  # the outbox needs an appointment id; an alert may have none
OUTBOX_SKIPPED = "skipped"


class StartLinkAudit(SQLModel, table=True):
    """One disclosure of a host start link: who, when, which appointment, how. No URL."""

    __tablename__ = "start_link_audits"

    id: int | None = Field(default=None, primary_key=True)
    appointment_id: str = Field(max_length=MAX_KEY_LENGTH, index=True)
    doctor_id: str = Field(max_length=MAX_KEY_LENGTH)
    principal: str = Field(max_length=160)  # doctor:<id> | admin | ... (+ key prefix)
    via: str = Field(max_length=16)
    at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Reminder(SQLModel, table=True):
    """A reminder decided for (appointment, version, role, offset): queued or skipped, once."""

    __tablename__ = "reminders"
    __table_args__ = (
        UniqueConstraint("appointment_id", "version", "role", "offset_seconds", name="uq_reminder_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    appointment_id: str = Field(max_length=MAX_KEY_LENGTH, index=True)
    version: int
    role: str = Field(max_length=16)
    offset_seconds: int
    status: str = Field(max_length=16)
    outbox_id: int | None = None
    decided_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class WebhookEndpoint(SQLModel, table=True):
    """A webhook URL that answered 410 Gone. Keyed by a hash of the clinic and the URL, so
    a new URL starts enabled and one clinic's 410 never silences another clinic's webhook
    (two clinics of one booking platform may share a URL)."""

    __tablename__ = "webhook_endpoints"

    url_hash: str = Field(primary_key=True, max_length=64)
    disabled_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    reason: str = Field(max_length=200)


class Alert(SQLModel, table=True):
    """An operational alert for the administrator; mailed through the outbox."""

    __tablename__ = "alerts"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=24, index=True)
    subject: str = Field(max_length=200)
    body: str = Field(sa_column=Column(Text(), nullable=False))
    appointment_id: str | None = Field(default=None, max_length=MAX_KEY_LENGTH, index=True)
    # Whose admins are told: the appointment's clinic, or the clinic the alert is about.
    clinic_id: str = Field(default=DEFAULT_CLINIC, max_length=MAX_CLINIC_ID_LENGTH, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


# --- start-link audits ------------------------------------------------------------------


AUDIT_PRINCIPAL_LENGTH = 160


def audit_principal(who: str, clinic_id: str, key_prefix: str | None = None) -> str:
    """``doctor:D-1 clinic:north key:ab12cd34ef``: who, of which clinic, with which API key.
    Within the column's 160 characters a very long doctor id is shortened, never the
    clinic or the key (which names the doctor anyway)."""
    suffix = f" clinic:{clinic_id}" + (f" key:{key_prefix}" if key_prefix else "")
    room = AUDIT_PRINCIPAL_LENGTH - len(suffix)
    return (who if len(who) <= room else who[: room - 1] + "…") + suffix


def record_disclosure(
    session: Session, *, appointment_id: str, doctor_id: str, principal: str, via: str
) -> StartLinkAudit:
    row = StartLinkAudit(appointment_id=appointment_id, doctor_id=doctor_id, principal=principal[:AUDIT_PRINCIPAL_LENGTH],
                         via=via)
    session.add(row)
    session.flush()
    return row


def disclosures(session: Session, appointment_id: str | None = None) -> list[StartLinkAudit]:
    statement = select(StartLinkAudit).order_by(col(StartLinkAudit.id))
    if appointment_id is not None:
        statement = statement.where(StartLinkAudit.appointment_id == appointment_id)
    return list(session.exec(statement))


# --- reminders ----------------------------------------------------------------------------


def decided_reminders(session: Session, appointment_id: str, version: int) -> set[tuple[str, int]]:
    """(role, offset_seconds) already queued or skipped for this version."""
    statement = select(Reminder.role, Reminder.offset_seconds).where(
        Reminder.appointment_id == appointment_id, Reminder.version == version
    )
    return {(role, offset) for role, offset in session.exec(statement)}


def record_reminder(
    session: Session, *, appointment_id: str, version: int, role: str, offset_seconds: int,
    status: str, outbox_id: int | None = None,
) -> bool:
    """Remember a decision; False if another scheduler already made it (unique key)."""
    row = Reminder(appointment_id=appointment_id, version=version, role=role,
                   offset_seconds=offset_seconds, status=status, outbox_id=outbox_id)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return False
    return True


def reminder_candidates(
    session: Session, now: datetime, horizon_seconds: int, limit: int = 5000
) -> list[tuple[Appointment, datetime]]:
    """Live, synced appointments starting within the horizon, with when their current
    version was received (the moment the people were told about it)."""
    statement = (
        select(Appointment, InboxEvent.received_at)
        .join(InboxEvent, col(InboxEvent.event_id) == col(Appointment.last_event_id), isouter=True)
        .where(
            Appointment.desired == states.SCHEDULED,
            Appointment.state == states.PROVISIONED,
            col(Appointment.synced_version) >= col(Appointment.version),
            col(Appointment.start_time) > now,
            col(Appointment.start_time) <= now + timedelta(seconds=horizon_seconds),
        )
        .order_by(col(Appointment.start_time))
        .limit(limit)
    )
    return [(appointment, received or appointment.created_at) for appointment, received in session.exec(statement)]


def reminders_for(session: Session, appointment_id: str) -> list[Reminder]:
    statement = select(Reminder).where(Reminder.appointment_id == appointment_id).order_by(col(Reminder.id))
    return list(session.exec(statement))


# --- the webhook switch ---------------------------------------------------------------


def webhook_key(url: str, clinic_id: str = DEFAULT_CLINIC) -> str:
    # The default clinic's key is the URL's alone, as before clinics existed.
    material = url if clinic_id == DEFAULT_CLINIC else f"{clinic_id}\x00{url}"
    return hashlib.sha256(material.encode()).hexdigest()


def webhook_disabled(session: Session, url: str, clinic_id: str = DEFAULT_CLINIC) -> bool:
    return session.get(WebhookEndpoint, webhook_key(url, clinic_id)) is not None


def disable_webhook(session: Session, url: str, reason: str, clinic_id: str = DEFAULT_CLINIC) -> bool:
    """True only for the call that disabled it, so exactly one alert is raised."""
    try:
        with session.begin_nested():
            session.add(WebhookEndpoint(url_hash=webhook_key(url, clinic_id), reason=reason[:200]))
    except IntegrityError:
        return False
    return True


def enable_webhook(session: Session, url: str, clinic_id: str = DEFAULT_CLINIC) -> bool:
    row = session.get(WebhookEndpoint, webhook_key(url, clinic_id))
    if row is None:
        return False
    session.delete(row)
    return True


# --- admin alerts ---------------------------------------------------------------------


def record_alert(
    session: Session, kind: str, subject: str, body: str, appointment_id: str | None,
    clinic_id: str | None = None,
) -> int:
    """Store an alert's text for the clinic's admins (``clinic_id``, else the appointment's,
    else the default clinic's); returns its id (the ``version`` of its admin outbox row)."""
    subject = " ".join(subject.split())[:200] or kind
    clinic = clinic_id or (clinic_of(appointment_id) if appointment_id else DEFAULT_CLINIC)
    alert = Alert(kind=kind[:24], subject=subject, body=body, appointment_id=appointment_id, clinic_id=clinic)
    session.add(alert)
    session.flush()
    assert alert.id is not None
    return alert.id


def queue_alert(
    session: Session, kind: str, subject: str, body: str, appointment_id: str | None = None,
    clinic_id: str | None = None,
) -> tuple[int, int]:
    """Record an alert and owe the clinic's admins a mail about it: (alert id, outbox id)."""
    alert_id = record_alert(session, kind, subject, body, appointment_id, clinic_id)
    message = OutboxMessage(appointment_id=appointment_id or NO_APPOINTMENT, version=alert_id,
                            role=ADMIN_ROLE, kind=kind[:24], channel="mail")
    session.add(message)
    session.flush()
    assert message.id is not None
    return alert_id, message.id


def get_alert(session: Session, alert_id: int) -> Alert | None:
    return session.get(Alert, alert_id)


def alerts(session: Session, kind: str | None = None, clinic_id: str | None = None) -> list[Alert]:
    statement = select(Alert).order_by(col(Alert.id))
    if kind is not None:
        statement = statement.where(Alert.kind == kind)
    if clinic_id is not None:
        statement = statement.where(Alert.clinic_id == clinic_id)
    return list(session.exec(statement))


def mark_skipped(session: Session, message: OutboxMessage, reason: str) -> None:
    """Deliberately not sent (no admin address, no webhook, webhook disabled)."""
    message.status = OUTBOX_SKIPPED
    message.last_error = reason[:300]
    message.sending_since = None
    session.add(message)
