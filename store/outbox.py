"""The notification outbox: one row per (appointment, version, role, kind, channel)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from store import states
from store.models import OutboxMessage, utcnow


def add_message(
    session: Session, *, appointment_id: str, version: int, role: str, kind: str, channel: str = "mail"
) -> OutboxMessage | None:
    """Queue a notification. None when that exact notification is already owed or sent."""
    statement = select(OutboxMessage).where(
        OutboxMessage.appointment_id == appointment_id,
        OutboxMessage.version == version,
        OutboxMessage.role == role,
        OutboxMessage.kind == kind,
        OutboxMessage.channel == channel,
    )
    if session.exec(statement).first() is not None:
        return None
    message = OutboxMessage(
        appointment_id=appointment_id, version=version, role=role, kind=kind, channel=channel
    )
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        return None
    return message


def get_message(session: Session, message_id: int) -> OutboxMessage | None:
    return session.get(OutboxMessage, message_id)


def has_kind(session: Session, appointment_id: str, kind: str) -> bool:
    statement = select(OutboxMessage.id).where(
        OutboxMessage.appointment_id == appointment_id, OutboxMessage.kind == kind
    )
    return session.exec(statement).first() is not None


def mark_sent(session: Session, message: OutboxMessage, ref: str | None = None) -> None:
    message.status = states.OUTBOX_SENT
    message.sent_at = utcnow()
    message.message_ref = ref
    message.last_error = None
    session.add(message)


def mark_attempt_failed(
    session: Session, message: OutboxMessage, reason: str, *, final: bool, retry_in: timedelta | None = None
) -> None:
    message.attempts += 1
    message.last_error = reason[:300]
    if final:
        message.status = states.OUTBOX_FAILED
    else:
        message.next_attempt_at = utcnow() + (retry_in or timedelta(seconds=30))
    session.add(message)


def mark_superseded(session: Session, message: OutboxMessage, reason: str) -> None:
    message.status = "superseded"
    message.last_error = reason[:300]
    session.add(message)


def due_message_ids(session: Session, older_than: datetime, limit: int = 1000) -> list[int]:
    statement = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.status == states.OUTBOX_PENDING,
            col(OutboxMessage.created_at) < older_than,
            col(OutboxMessage.next_attempt_at) <= utcnow(),
        )
        .order_by(col(OutboxMessage.id))
        .limit(limit)
    )
    return [i for i in session.exec(statement) if i is not None]


def messages_for(session: Session, appointment_id: str) -> list[OutboxMessage]:
    statement = (
        select(OutboxMessage)
        .where(OutboxMessage.appointment_id == appointment_id)
        .order_by(col(OutboxMessage.id))
    )
    return list(session.exec(statement))
