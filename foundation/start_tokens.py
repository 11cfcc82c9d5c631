"""Signed start-link tokens: ``{TELEMED_PUBLIC_URL}/start/{token}``.

A token names one doctor and one appointment and carries an absolute expiry (the end of
the appointment plus a short grace, so an overrunning consultation can be restarted). It
holds no Zoom credential: the start_url is fetched from Zoom when the link is opened.

Signing uses itsdangerous rather than hand-rolled HMAC code: it gives us key rotation (a
list of keys, newest signs, any verifies), salt-based domain separation and constant-time
comparison from a well-kept library. The keys are the TELEMED_SECRET_KEYS Fernet keys,
separated from their encryption use by the salt and HMAC key derivation, so rotating the
encryption keys rotates these too and no extra secret needs configuring. The expiry is
absolute (the appointment's end), not an age, so it lives in the payload instead of
itsdangerous' timestamp.

This module is used by workers (to write links into mails) and by web (to check them), so
it lives in the composition-root package that both may import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer

from telemed.foundation.signed_tokens import SignedTokenError, serializer

SALT = "telemed.start-link.v1"
GRACE = timedelta(minutes=30)
MAX_TOKEN_LENGTH = 1024


class StartTokenError(SignedTokenError):
    """The token is unusable. ``reason`` is ``invalid`` or ``expired``; safe to log."""


@dataclass(frozen=True)
class StartClaim:
    appointment_id: str
    doctor_id: str
    expires_at: datetime


def _serializer(keys: Sequence[str]) -> URLSafeSerializer:
    return serializer(keys, SALT)


def expiry_for(start: datetime, duration_minutes: int, grace: timedelta = GRACE) -> datetime:
    """When a start link for this appointment stops working: its end plus ``grace``."""
    return start.astimezone(UTC) + timedelta(minutes=duration_minutes) + grace


def issue(keys: Sequence[str], *, appointment_id: str, doctor_id: str, expires_at: datetime) -> str:
    payload = {"a": appointment_id, "d": doctor_id, "x": int(expires_at.timestamp())}
    token = _serializer(keys).dumps(payload)
    assert isinstance(token, str)
    return token


def verify(keys: Sequence[str], token: str, *, now: datetime | None = None) -> StartClaim:
    """The claim inside ``token``, or :class:`StartTokenError` (invalid / expired)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise StartTokenError("invalid")
    try:
        payload = _serializer(keys).loads(token)
    except BadSignature:
        raise StartTokenError("invalid") from None
    if not isinstance(payload, dict):
        raise StartTokenError("invalid")
    appointment_id, doctor_id, expiry = payload.get("a"), payload.get("d"), payload.get("x")
    if not isinstance(appointment_id, str) or not isinstance(doctor_id, str) or not isinstance(expiry, int):
        raise StartTokenError("invalid")
    expires_at = datetime.fromtimestamp(expiry, UTC)
    if (now or datetime.now(UTC)) >= expires_at:
        raise StartTokenError("expired")
    return StartClaim(appointment_id, doctor_id, expires_at)


def link_for(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/start/{token}"
