"""Zoom hosts that cannot use meeting registration: recorded once, so they alert once."""

from __future__ import annotations

from sqlmodel import Session, col, select

from telemed.store.db import insert_unless_exists
from telemed.store.models import RegistrationFallback


def flag_fallback_host(session: Session, host: str, reason: str) -> bool:
    """Record that ``host`` fell back to the passcode link; True only the first time
    (race-free across workers: the caller alerts exactly when this is True)."""
    return insert_unless_exists(session, RegistrationFallback(host=host, reason=reason[:200]), ["host"]) is not None


def fallback_hosts(session: Session) -> list[RegistrationFallback]:
    return list(session.exec(select(RegistrationFallback).order_by(col(RegistrationFallback.first_at))))
