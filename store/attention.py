"""The one way an appointment comes to need attention: state, reason, and whether it changed.

Every path that parks an appointment (sync's refusals and lost grants, a meeting deleted
in Zoom, a doctor's dead grant) goes through ``mark_needs_attention``, so the reason is
cut to the column's length by one rule and "did this call make the change?" (what decides
the once-per-transition admin alert) means the same everywhere.
"""

from __future__ import annotations

from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from telemed.store import states
from telemed.store.models import ATTENTION_REASON_MAX_LENGTH, Appointment, utcnow


def fit_reason(reason: str) -> str:
    """The reason as the column stores it (cut to its length)."""
    return reason[:ATTENTION_REASON_MAX_LENGTH]


def mark_needs_attention(session: Session, appointment: Appointment, reason: str) -> bool:
    """Put ``appointment`` (read FOR UPDATE by the caller) in needs_attention with ``reason``.

    Returns True when this call changed the state or the reason: a retried message that
    parks the same appointment for the same reason returns False and owes no second alert.
    """
    stored = fit_reason(reason)
    changed = appointment.state != states.NEEDS_ATTENTION or appointment.attention_reason != stored
    appointment.state, appointment.attention_reason = states.NEEDS_ATTENTION, stored
    appointment.updated_at = utcnow()
    session.add(appointment)
    session.flush()
    return changed


# Clinic-wide causes (a clinic's Zoom app missing or refused) ------------------------------
# An appointment parked for such a cause carries a reason that starts with the cause's
# prefix; the prefix is what finds them again, to alert once per cause and to resume them.


def parked_with(
    session: Session, clinic_id: str, prefix: str, *, except_id: str | None = None, limit: int = 1000,
) -> list[str]:
    """The clinic's appointments in needs_attention whose reason starts with ``prefix``."""
    statement = select(Appointment.id).where(
        Appointment.clinic_id == clinic_id,
        Appointment.state == states.NEEDS_ATTENTION,
        col(Appointment.attention_reason).startswith(prefix),
    ).order_by(col(Appointment.start_time)).limit(limit)
    if except_id is not None:
        statement = statement.where(Appointment.id != except_id)
    return list(session.exec(statement))


def resume_parked(session: Session, clinic_id: str, prefix: str, limit: int = 1000) -> list[str]:
    """Back to pending: the clinic's appointments parked for the cause ``prefix`` names
    (read FOR UPDATE, so a concurrent park or resume waits). Returns their ids."""
    statement = select(Appointment).where(
        Appointment.clinic_id == clinic_id,
        Appointment.state == states.NEEDS_ATTENTION,
        col(Appointment.attention_reason).startswith(prefix),
    ).order_by(col(Appointment.start_time)).limit(limit).with_for_update()
    return resume_selected(session, statement)


def resume_selected(session: Session, statement: SelectOfScalar[Appointment]) -> list[str]:
    """Back to pending: the parked appointments ``statement`` selects (FOR UPDATE). Their ids."""
    resumed = []
    for appointment in session.exec(statement):
        appointment.state, appointment.attention_reason = states.PENDING, None
        appointment.updated_at = utcnow()
        session.add(appointment)
        resumed.append(appointment.id)
    session.flush()
    return resumed
