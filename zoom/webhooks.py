"""Zoom webhooks: the ``v0`` signature, the URL-validation challenge, and what we read.

    x-zm-request-timestamp: <unix seconds>
    x-zm-signature: v0=<hex HMAC-SHA256(secret token, "v0:" + timestamp + ":" + raw body)>

The challenge (``endpoint.url_validation``) is answered with the plain token and its hex
HMAC-SHA256 under the same secret token. Errors reuse ``foundation.signatures.SignatureError``
so both endpoints count rejections under the same reasons.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Any

from telemed.foundation.signatures import SignatureError

TIMESTAMP_HEADER = "x-zm-request-timestamp"
SIGNATURE_HEADER = "x-zm-signature"
_TIMESTAMP = re.compile(r"^\d{1,13}$")
_SIGNATURE = re.compile(r"^v0=([0-9a-f]{64})$")
_MILLISECONDS_AFTER = 10**11  # a timestamp this large is in milliseconds, not seconds

URL_VALIDATION = "endpoint.url_validation"
MEETING_STARTED = "meeting.started"
MEETING_ENDED = "meeting.ended"
MEETING_DELETED = "meeting.deleted"
APP_DEAUTHORIZED = "app_deauthorized"
HANDLED = frozenset({MEETING_STARTED, MEETING_ENDED, MEETING_DELETED, APP_DEAUTHORIZED})


def _mac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def zoom_signature(secret: str, timestamp: str, body: bytes) -> str:
    return "v0=" + _mac(secret, f"v0:{timestamp}:".encode("ascii") + body)


def encrypted_token(secret: str, plain_token: str) -> str:
    return _mac(secret, plain_token.encode("utf-8"))


def verify_zoom(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, *,
    tolerance_seconds: int, now: float | None = None,
) -> None:
    if not timestamp or not signature:
        missing = TIMESTAMP_HEADER if not timestamp else SIGNATURE_HEADER
        raise SignatureError("missing", f"the {missing} header is required")
    timestamp = timestamp.strip()
    if not _TIMESTAMP.match(timestamp):
        raise SignatureError("malformed", f"{TIMESTAMP_HEADER} must be unix seconds")
    match = _SIGNATURE.match(signature.strip())
    if match is None:
        raise SignatureError("malformed", f"{SIGNATURE_HEADER} must be v0=<64 hex digits>")
    seconds = int(timestamp)
    if seconds > _MILLISECONDS_AFTER:
        seconds //= 1000
    if abs((time.time() if now is None else now) - seconds) > tolerance_seconds:
        raise SignatureError("expired", f"{TIMESTAMP_HEADER} is more than {tolerance_seconds} s away from our clock")
    if not hmac.compare_digest(signature.strip(), zoom_signature(secret, timestamp, body)):
        raise SignatureError("mismatch", "signature does not match the body")


class BadNotification(ValueError):
    """The notification lacks what its event needs; the message names the field."""


class ForeignMeeting(ValueError):
    """A meeting id no meeting of ours can have: Zoom's ids are int64, like our BIGINT column."""


MAX_MEETING_ID = 2**63 - 1
_MEETING_ID = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class Notification:
    event: str
    zoom_meeting_id: int | None = None
    zoom_user_id: str | None = None
    operator: str | None = None  # who did it, for meeting.deleted (an email or a user id)


def read_notification(data: Any) -> Notification:
    """What telemed needs from a parsed notification; ``BadNotification`` names what is missing,
    ``ForeignMeeting`` says the meeting id cannot be one of ours."""
    if not isinstance(data, dict):
        raise BadNotification("the notification must be a JSON object")
    event = data.get("event")
    if not isinstance(event, str) or not event:
        raise BadNotification("event: is required")
    payload = data.get("payload")
    if event not in HANDLED:
        return Notification(event)
    if not isinstance(payload, dict):
        raise BadNotification("payload: is required")
    if event == APP_DEAUTHORIZED:
        user_id = payload.get("user_id")
        if not isinstance(user_id, str) or not user_id:
            raise BadNotification("payload.user_id: is required")
        return Notification(event, zoom_user_id=user_id)
    meeting = payload.get("object")
    if not isinstance(meeting, dict):
        raise BadNotification("payload.object: is required")
    meeting_id = _meeting_id(meeting.get("id"))
    operator = payload.get("operator") or payload.get("operator_id")
    return Notification(event, zoom_meeting_id=meeting_id,
                        zoom_user_id=str(meeting.get("host_id") or "") or None,
                        operator=operator if isinstance(operator, str) else None)


def _meeting_id(value: Any) -> int:
    """Zoom sends the id as a number or a string of digits; ``ForeignMeeting`` past int64."""
    digits = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not _MEETING_ID.fullmatch(digits):
        raise BadNotification("payload.object.id: must be a meeting id")
    # Compared as text first: int() of a digit string is refused past 4,300 digits.
    if len(digits.lstrip("-0")) > len(str(MAX_MEETING_ID)) or not 0 < int(digits) <= MAX_MEETING_ID:
        raise ForeignMeeting(f"payload.object.id: outside Zoom's meeting ids (1 to {MAX_MEETING_ID})")
    return int(digits)
