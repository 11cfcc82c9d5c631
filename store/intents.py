"""Provisioning intents: a committed promise to create, found again after a crash."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from telemed.store import states
from telemed.store.db import insert_unless_exists
from telemed.store.models import Appointment, ProvisioningIntent, utcnow


def open_intent(session: Session, appointment_id: str) -> ProvisioningIntent | None:
    statement = select(ProvisioningIntent).where(ProvisioningIntent.open_for == appointment_id)
    return session.exec(statement).first()


def begin_intent(
    session: Session, *, appointment_id: str, marker: str, host: str
) -> tuple[ProvisioningIntent, bool]:
    """Open the intent, or return the one left open. The flag says whether it is new.

    An intent that is already open means an earlier attempt may have created the
    meeting before it died: the caller must look for it before creating another.
    """
    intent = ProvisioningIntent(
        appointment_id=appointment_id, open_for=appointment_id, marker=marker, host=host
    )
    if insert_unless_exists(session, intent, ["open_for"]) is not None:
        return intent, True
    existing = open_intent(session, appointment_id)
    if existing is None:  # closed between our insert and this read: the caller's retry decides
        raise RuntimeError("provisioning intent changed concurrently")
    existing.attempts += 1
    session.add(existing)
    return existing, False


def close_intent(session: Session, intent: ProvisioningIntent, status: str = states.INTENT_DONE) -> None:
    intent.status = status
    intent.open_for = None
    intent.closed_at = utcnow()
    session.add(intent)


def stale_open_intents(session: Session, older_than: datetime) -> list[ProvisioningIntent]:
    statement = select(ProvisioningIntent).where(
        col(ProvisioningIntent.open_for).is_not(None), col(ProvisioningIntent.created_at) < older_than
    )
    return list(session.exec(statement))


def intents_with_appointments_since(
    session: Session, since: datetime
) -> list[tuple[ProvisioningIntent, Appointment]]:
    """Intents created after ``since``, each with its appointment (for the orphan sweep)."""
    statement = (
        select(ProvisioningIntent, Appointment)
        .join(Appointment, col(Appointment.id) == col(ProvisioningIntent.appointment_id))
        .where(col(ProvisioningIntent.created_at) > since)
    )
    return [(intent, appointment) for intent, appointment in session.exec(statement)]
