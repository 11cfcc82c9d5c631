"""The notification outbox: one row per (appointment, version, role, kind, channel)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select  # sqlmodel's select types at most four entities
from sqlmodel import Session, col, func, select, update

from telemed.store import states
from telemed.store.db import insert_unless_exists
from telemed.store.models import Appointment, Doctor, InboxEvent, Meeting, OutboxMessage, utcnow

# The unique constraint uq_outbox_key: one row per notification.
OUTBOX_KEY = ("appointment_id", "version", "role", "kind", "channel")


def add_message(
    session: Session, *, appointment_id: str, version: int, role: str, kind: str, channel: str = "mail"
) -> OutboxMessage | None:
    """Queue a notification. None when that exact notification is already owed or sent."""
    message = OutboxMessage(
        appointment_id=appointment_id, version=version, role=role, kind=kind, channel=channel
    )
    return insert_unless_exists(session, message, OUTBOX_KEY)


def get_message(session: Session, message_id: int) -> OutboxMessage | None:
    return session.get(OutboxMessage, message_id)


def has_kind(session: Session, appointment_id: str, kind: str) -> bool:
    statement = select(OutboxMessage.id).where(
        OutboxMessage.appointment_id == appointment_id, OutboxMessage.kind == kind
    )
    return session.exec(statement).first() is not None


def mark_sent_if_pending(session: Session, message_id: int, ref: str | None = None) -> bool:
    """Record a delivery, in one UPDATE and only while the row is still pending (the hot
    path of every delivery: no read first). False when the row was settled meanwhile."""
    result = session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.id) == message_id, col(OutboxMessage.status) == states.OUTBOX_PENDING)
        .values(status=states.OUTBOX_SENT, sent_at=utcnow(), message_ref=ref, last_error=None, sending_since=None)
        # Nothing in this session holds the row: skip matching the change against its objects.
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def mark_attempt_failed(
    session: Session, message: OutboxMessage, reason: str, *, final: bool, retry_in: timedelta | None = None
) -> None:
    message.attempts += 1
    message.last_error = reason[:300]
    message.sending_since = None
    if final:
        message.status = states.OUTBOX_FAILED
    else:
        message.next_attempt_at = utcnow() + (retry_in or timedelta(seconds=30))
    session.add(message)


def mark_superseded(session: Session, message: OutboxMessage, reason: str) -> None:
    message.status = states.OUTBOX_SUPERSEDED
    message.last_error = reason[:300]
    message.sending_since = None
    session.add(message)


def recipient_mails_locked(session: Session, appointment_id: str, role: str) -> list[OutboxMessage]:
    """Every mail row of one recipient (an appointment's patient or doctor), read while
    holding the appointment's row lock, so that deciding which of them may go out next
    and claiming it is one atomic step for all workers (PostgreSQL: ``FOR UPDATE``;
    SQLite: every transaction takes the write lock up front, ``store.db``)."""
    session.execute(
        sa_select(col(Appointment.id)).where(col(Appointment.id) == appointment_id).with_for_update()
    )
    statement = (
        select(OutboxMessage)
        .where(OutboxMessage.appointment_id == appointment_id, OutboxMessage.role == role,
               OutboxMessage.channel == "mail")
        .order_by(col(OutboxMessage.id))
    )
    return list(session.exec(statement))


def claim_for_sending(session: Session, message: OutboxMessage) -> None:
    """Mark the row as being sent (cleared when it is settled or its attempt fails)."""
    message.sending_since = utcnow()
    session.add(message)


def due_messages(session: Session, older_than: datetime, limit: int = 1000) -> list[tuple[int, str]]:
    """(id, appointment key) of the pending rows due now, created before ``older_than``."""
    statement = (
        select(OutboxMessage.id, OutboxMessage.appointment_id)
        .where(
            OutboxMessage.status == states.OUTBOX_PENDING,
            col(OutboxMessage.created_at) < older_than,
            col(OutboxMessage.next_attempt_at) <= utcnow(),
        )
        .order_by(col(OutboxMessage.id))
        .limit(limit)
    )
    return [(i, appointment_id) for i, appointment_id in session.exec(statement) if i is not None]


def messages_for(session: Session, appointment_id: str) -> list[OutboxMessage]:
    statement = (
        select(OutboxMessage)
        .where(OutboxMessage.appointment_id == appointment_id)
        .order_by(col(OutboxMessage.id))
    )
    return list(session.exec(statement))


def _delivery_view_statement() -> Any:
    received = (
        select(func.min(col(InboxEvent.received_at)))
        .where(InboxEvent.appointment_id == OutboxMessage.appointment_id,
               InboxEvent.version == OutboxMessage.version)
        .scalar_subquery()
    )
    return (
        sa_select(OutboxMessage, Appointment, Doctor, Meeting, received)
        .outerjoin(Appointment, col(Appointment.id) == col(OutboxMessage.appointment_id))
        .outerjoin(Doctor, col(Doctor.id) == col(Appointment.doctor_id))
        .outerjoin(Meeting, col(Meeting.appointment_id) == col(Appointment.id))
        .where(col(OutboxMessage.id) == bindparam("message_id"))
    )


# Built once: building and keying a statement costs more CPU than PostgreSQL spends on it.
_DELIVERY_VIEW = _delivery_view_statement()


@dataclass(frozen=True)
class DeliveryView:
    """One outbox row with everything its delivery reads, fetched in one statement."""

    message: OutboxMessage
    appointment: Appointment | None
    doctor: Doctor | None
    meeting: Meeting | None
    event_received_at: datetime | None  # the inbox's first event of this version


def delivery_view(session: Session, message_id: int) -> DeliveryView | None:
    """The row, its appointment, doctor and meeting, and when its version's first event
    arrived (the end-to-end metric's start): one query where five lookups would do."""
    row = session.execute(_DELIVERY_VIEW, {"message_id": message_id}).first()
    if row is None:
        return None
    message, appointment, doctor, meeting, received_at = row
    if received_at is not None and received_at.tzinfo is None:  # an aggregate may skip the type's conversion
        received_at = received_at.replace(tzinfo=UTC)
    return DeliveryView(message, appointment, doctor, meeting, received_at)
