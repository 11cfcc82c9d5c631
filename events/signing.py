"""HMAC signatures for HTTP messages between telemed and booking systems (scheme ``v1``).

Used both ways: booking systems sign the events they POST to ``/v1/events``, and telemed
signs the status callbacks it POSTs to the booking system's webhook. The signature covers
the timestamp and the raw body, so neither can be changed, nor the request used later:

    X-Telemed-Timestamp: <unix seconds>
    X-Telemed-Signature: v1=<hex HMAC-SHA256(secret, "v1:" + timestamp + ":" + raw body)>

``verify`` checks the format, the clock window and the MAC (in constant time). There is no
nonce: a resend of an identical request inside the window is accepted, as with Stripe's
and GitHub's signed webhooks, so the receiver must make a repeat harmless (the ingress
answers it ``duplicate`` by its ``event_id``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass

from telemed.foundation.signatures import SignatureError

SCHEME = "v1"
TIMESTAMP_HEADER = "X-Telemed-Timestamp"
SIGNATURE_HEADER = "X-Telemed-Signature"
DEFAULT_TOLERANCE_SECONDS = 300

_TIMESTAMP = re.compile(r"^\d{1,12}$")
_SIGNATURE = re.compile(r"^v1=([0-9a-f]{64})$")

__all__ = ["SignatureError", "Signed", "compute", "sign", "signature_header", "verify"]


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def compute(secret: str | bytes, timestamp: str | int, body: bytes) -> str:
    """The hex MAC of ``"v1:" + timestamp + ":" + body`` (without the ``v1=`` prefix)."""
    message = f"{SCHEME}:{timestamp}:".encode("ascii") + body
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def signature_header(secret: str | bytes, timestamp: str | int, body: bytes) -> str:
    return f"{SCHEME}={compute(secret, timestamp, body)}"


@dataclass(frozen=True)
class Signed:
    """A signed body: ``headers`` go on the request next to the exact ``body`` bytes."""

    timestamp: str
    signature: str
    body: bytes

    @property
    def headers(self) -> dict[str, str]:
        return {TIMESTAMP_HEADER: self.timestamp, SIGNATURE_HEADER: self.signature,
                "Content-Type": "application/json"}


def sign(secret: str | bytes, body: bytes, *, now: float | None = None) -> Signed:
    """Sign ``body`` now. A retry may resend the same headers while they are inside the window."""
    timestamp = str(int(time.time() if now is None else now))
    return Signed(timestamp, signature_header(secret, timestamp, body), body)


def verify(
    secret: str | bytes,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Raise ``SignatureError`` unless the headers sign ``body`` within the clock window."""
    if not timestamp or not signature:
        missing = TIMESTAMP_HEADER if not timestamp else SIGNATURE_HEADER
        raise SignatureError("missing", f"the {missing} header is required")
    timestamp = timestamp.strip()
    if not _TIMESTAMP.match(timestamp):
        raise SignatureError("malformed", f"{TIMESTAMP_HEADER} must be unix seconds")
    match = _SIGNATURE.match(signature.strip())
    if match is None:
        raise SignatureError("malformed", f"{SIGNATURE_HEADER} must be v1=<64 hex digits>")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance_seconds:
        raise SignatureError(
            "expired", f"{TIMESTAMP_HEADER} is more than {tolerance_seconds} s away from our clock"
        )
    if not hmac.compare_digest(match.group(1), compute(secret, timestamp, body)):
        raise SignatureError("mismatch", "signature does not match the body")
