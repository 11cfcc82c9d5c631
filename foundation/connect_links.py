"""Signed, expiring doctor connect links: ``{TELEMED_PUBLIC_URL}/oauth/zoom/connect?token=…``.

A connect link lets whoever opens it attach a Zoom account to that doctor, so it is a
credential: it is minted on demand (``telemed doctors connect-link``, or when an admin
alert is mailed), never stored, and expires (TELEMED_CONNECT_LINK_TTL_SECONDS, 7 days).

Signing follows ``foundation.start_tokens``: itsdangerous with the TELEMED_SECRET_KEYS keys
(newest signs, any verifies), separated from every other use by its own salt. The
absolute expiry is in the payload.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from itsdangerous import BadSignature, URLSafeSerializer

from telemed.foundation.signed_tokens import SignedTokenError, serializer
from telemed.foundation.tenancy import CLINIC_ID_PATTERN, clinic_of, external_id

SALT = "telemed.zoom-connect.v1"
CONNECT_PATH = "/oauth/zoom/connect"
CALLBACK_PATH = "/oauth/zoom/callback"
MAX_TOKEN_LENGTH = 1024
# A clinic's own doctor id: the part of the doctor's scoped key after "<clinic>/"
# (foundation.tenancy splits the key; its clinic part is checked against the clinic rule).
_DOCTOR_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class ConnectTokenError(SignedTokenError):
    """``reason``: ``invalid`` or ``expired``; safe to log and show."""


@dataclass(frozen=True)
class ConnectClaim:
    doctor_id: str
    expires_at: datetime


def _serializer(keys: Sequence[str]) -> URLSafeSerializer:
    return serializer(keys, SALT)


def make_connect_token(
    keys: Sequence[str], doctor_id: str, ttl: timedelta, now: datetime | None = None
) -> str:
    """``doctor_id`` is the doctor's scoped key (``foundation.tenancy``): a clinic's own
    doctor id, behind ``<clinic>/`` for any clinic but the default one."""
    clinic, external = clinic_of(doctor_id), external_id(doctor_id)
    if not _DOCTOR_ID.match(external) or CLINIC_ID_PATTERN.match(clinic) is None:
        raise ValueError("doctor id must be a doctor's key: [<clinic>/]<1-128 characters of [A-Za-z0-9._:-]>")
    expires = (now or datetime.now(UTC)) + ttl
    return str(_serializer(keys).dumps({"d": doctor_id, "exp": int(expires.timestamp())}))


def read_connect_token(keys: Sequence[str], token: str, now: datetime | None = None) -> ConnectClaim:
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise ConnectTokenError("invalid")
    try:
        data = _serializer(keys).loads(token)
    except BadSignature:
        raise ConnectTokenError("invalid") from None
    if not isinstance(data, dict) or not isinstance(data.get("d"), str) or not isinstance(data.get("exp"), int):
        raise ConnectTokenError("invalid")
    expires = datetime.fromtimestamp(data["exp"], UTC)
    if (now or datetime.now(UTC)) >= expires:
        raise ConnectTokenError("expired")
    return ConnectClaim(doctor_id=data["d"], expires_at=expires)


def connect_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}{CONNECT_PATH}?{urlencode({'token': token})}"


def callback_url(public_url: str) -> str:
    """The redirect_uri registered with the Zoom app (must match exactly)."""
    return f"{public_url.rstrip('/')}{CALLBACK_PATH}"


def fresh_connect_link(
    keys: Sequence[str], public_url: str | None, doctor_id: str, ttl: timedelta
) -> str | None:
    """A link to send now, or None when TELEMED_PUBLIC_URL is not set."""
    if not public_url:
        return None
    return connect_url(public_url, make_connect_token(keys, doctor_id, ttl))
