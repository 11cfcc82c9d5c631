"""Signed patient join-link tokens: ``{TELEMED_PUBLIC_URL}/join/{token}``.

A token names one appointment and the patient it was sent to, and nothing else: no Zoom
link, no expiry. The link is resolved when it is clicked (``web.join_links``) to the
patient's current personal Zoom link, so a meeting Zoom lost and telemed re-created, or a
new registration, does not strand the patient on a dead link; whether the appointment is
cancelled or over is read from the store then, not frozen into the token. A token sent to
one patient never opens a later patient's link (the appointment's patient is compared).

Signed like the start links (``foundation.signed_tokens``: the TELEMED_SECRET_KEYS, newest
signs, any verifies) under a salt of its own, so neither kind verifies as the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from itsdangerous import BadSignature

from telemed.foundation.signed_tokens import SignedTokenError, serializer

SALT = "telemed.join-link.v1"
MAX_TOKEN_LENGTH = 1024


class JoinTokenError(SignedTokenError):
    """The token is unusable (``reason`` ``invalid``); safe to log."""


@dataclass(frozen=True)
class JoinClaim:
    appointment_id: str
    patient_id: str


def issue(keys: Sequence[str], *, appointment_id: str, patient_id: str) -> str:
    token = serializer(keys, SALT).dumps({"a": appointment_id, "p": patient_id})
    assert isinstance(token, str)
    return token


def verify(keys: Sequence[str], token: str) -> JoinClaim:
    """The claim inside ``token``, or :class:`JoinTokenError`."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise JoinTokenError("invalid")
    try:
        payload = serializer(keys, SALT).loads(token)
    except BadSignature:
        raise JoinTokenError("invalid") from None
    if not isinstance(payload, dict):
        raise JoinTokenError("invalid")
    appointment_id, patient_id = payload.get("a"), payload.get("p")
    if not isinstance(appointment_id, str) or not isinstance(patient_id, str):
        raise JoinTokenError("invalid")
    return JoinClaim(appointment_id, patient_id)


def link_for(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/join/{token}"
