"""The doctor OAuth connect flow's state rows: single use, bound to one browser.

The state value and the browser-binding nonce are stored as SHA-256 hashes; the PKCE
verifier is encrypted.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column
from sqlmodel import Field, Session, SQLModel, col, select

from telemed.foundation.tenancy import MAX_KEY_LENGTH
from telemed.store.models import _ts, utcnow
from telemed.store.types import EncryptedText


class ZoomOAuthState(SQLModel, table=True):
    __tablename__ = "zoom_oauth_states"

    state_hash: str = Field(primary_key=True, max_length=64)
    doctor_id: str = Field(foreign_key="doctors.id", max_length=MAX_KEY_LENGTH, index=True)
    browser_hash: str = Field(max_length=64)
    code_verifier: str = Field(sa_column=Column(EncryptedText(), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    expires_at: datetime = Field(sa_column=_ts(index=True))
    used_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


@dataclass(frozen=True, repr=False)
class ConsumedState:
    """A callback's state, checked: ``problem`` is None when it may proceed."""

    doctor_id: str | None
    code_verifier: str | None
    problem: str | None


@dataclass(frozen=True, repr=False)
class IssuedState:
    state: str
    code_verifier: str
    browser_nonce: str


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def issue_state(session: Session, doctor_id: str, ttl: timedelta, now: datetime | None = None) -> IssuedState:
    """A single-use state with its PKCE verifier (RFC 7636: 43-128 chars) and browser nonce."""
    now = now or utcnow()
    issued = IssuedState(
        state=secrets.token_urlsafe(32), code_verifier=secrets.token_urlsafe(64),
        browser_nonce=secrets.token_urlsafe(32),
    )
    session.add(ZoomOAuthState(
        state_hash=_digest(issued.state), doctor_id=doctor_id, browser_hash=_digest(issued.browser_nonce),
        code_verifier=issued.code_verifier, created_at=now, expires_at=now + ttl,
    ))
    # Old rows are useless after expiry; clear them as new ones arrive.
    for stale in session.exec(select(ZoomOAuthState).where(col(ZoomOAuthState.expires_at) < now - timedelta(days=1))):
        session.delete(stale)
    return issued


def consume_state(
    session: Session, state: str, browser_nonce: str | None, now: datetime | None = None
) -> ConsumedState:
    """Check a callback's state and mark it used (in this transaction, whatever the outcome).

    Problems: unknown, already used, expired, or issued to another browser (the cookie set
    at /connect does not match: someone else's authorization landed in this browser).
    """
    now = now or utcnow()
    row = session.exec(
        select(ZoomOAuthState).where(ZoomOAuthState.state_hash == _digest(state)).with_for_update()
    ).first()
    if row is None:
        return ConsumedState(None, None, "unknown state")
    if row.used_at is not None:
        return ConsumedState(row.doctor_id, None, "state already used")
    row.used_at = now  # single use, whatever happens next
    session.add(row)
    if row.expires_at <= now:
        return ConsumedState(row.doctor_id, None, "state expired")
    if not browser_nonce or not secrets.compare_digest(row.browser_hash, _digest(browser_nonce)):
        return ConsumedState(row.doctor_id, None, "state was issued to another browser")
    return ConsumedState(row.doctor_id, row.code_verifier, None)
