"""How patients join: the link a patient may hold, the hosts that cannot use meeting
registration (recorded once, so they alert once), the audit of /join/ link clicks."""

from __future__ import annotations

from sqlmodel import Session, col, select

from telemed.store import states
from telemed.store.db import insert_unless_exists
from telemed.store.models import JoinClick, Meeting, RegistrationFallback


def patient_join_url(meeting: Meeting) -> str:
    """The Zoom link a patient may hold: their own when they are the meeting's registrant,
    else the meeting's passcode link (no registration, or a fallback host)."""
    if meeting.registration == states.REGISTRATION_REGISTERED and meeting.registrant_join_url:
        return meeting.registrant_join_url
    return meeting.join_url


def flag_fallback_host(session: Session, host: str, reason: str) -> bool:
    """Record that ``host`` fell back to the passcode link; True only the first time
    (race-free across workers: the caller alerts exactly when this is True)."""
    return insert_unless_exists(session, RegistrationFallback(host=host, reason=reason[:200]), ["host"]) is not None


def fallback_hosts(session: Session) -> list[RegistrationFallback]:
    return list(session.exec(select(RegistrationFallback).order_by(col(RegistrationFallback.first_at))))


def record_join_click(session: Session, appointment_id: str, outcome: str) -> JoinClick:
    row = JoinClick(appointment_id=appointment_id, outcome=outcome[:24])
    session.add(row)
    session.flush()
    return row


def join_clicks(session: Session, appointment_id: str) -> list[JoinClick]:
    statement = select(JoinClick).where(JoinClick.appointment_id == appointment_id).order_by(col(JoinClick.id))
    return list(session.exec(statement))
