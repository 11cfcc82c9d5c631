"""The one way an appointment comes to need attention: state, reason, and whether it changed.

Every path that parks an appointment (sync's refusals and lost grants, a meeting deleted
in Zoom, a doctor's dead grant) goes through ``mark_needs_attention``, so the reason is
cut to the column's length by one rule and "did this call make the change?" (what decides
the once-per-transition admin alert) means the same everywhere.
"""

from __future__ import annotations

from sqlmodel import Session

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
