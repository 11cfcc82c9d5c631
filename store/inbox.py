"""The inbox: accepted events, idempotent on event_id."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlmodel import Session, col, func, select

from telemed.foundation.tenancy import DEFAULT_CLINIC
from telemed.store import states
from telemed.store.db import insert_unless_exists
from telemed.store.models import InboxEvent, utcnow


def record_event(
    session: Session,
    *,
    event_id: str,
    type: str,
    appointment_id: str,
    version: int,
    occurred_at: datetime,
    payload: str,
    clinic_id: str = DEFAULT_CLINIC,
) -> bool:
    """Add the event unless its id is known. True when it is new.

    ``event_id`` and ``appointment_id`` are scoped keys of ``clinic_id`` (foundation.tenancy).

    A concurrent duplicate (two publishers racing on one id) ends as "known" instead of
    failing the caller's transaction: the insert does nothing on a taken id.
    """
    event = InboxEvent(
        event_id=event_id, clinic_id=clinic_id, type=type, appointment_id=appointment_id, version=version,
        occurred_at=occurred_at, payload=payload,
    )
    return insert_unless_exists(session, event, ["event_id"]) is not None


def get_event(session: Session, event_id: str) -> InboxEvent | None:
    return session.get(InboxEvent, event_id)


def mark_processed(session: Session, event: InboxEvent, status: str, note: str | None = None) -> None:
    event.status = status
    event.note = note
    event.processed_at = utcnow()
    session.add(event)


def pending_event_ids(session: Session, older_than: datetime, limit: int = 1000,
                      exclude_clinics: Collection[str] = ()) -> list[str]:
    """Pending events received before ``older_than``, not of ``exclude_clinics`` (for the reconciler)."""
    statement = (
        select(InboxEvent.event_id)
        .where(InboxEvent.status == states.EVENT_PENDING, col(InboxEvent.received_at) < older_than)
        .order_by(col(InboxEvent.received_at))
        .limit(limit)
    )
    if exclude_clinics:
        statement = statement.where(col(InboxEvent.clinic_id).not_in(list(exclude_clinics)))
    return list(session.exec(statement))


def events_for(session: Session, appointment_id: str) -> list[InboxEvent]:
    statement = (
        select(InboxEvent)
        .where(InboxEvent.appointment_id == appointment_id)
        .order_by(col(InboxEvent.received_at))
    )
    return list(session.exec(statement))



def count_pending_events(session: Session) -> int:
    statement = select(func.count()).select_from(InboxEvent).where(InboxEvent.status == states.EVENT_PENDING)
    return int(session.exec(statement).one())
