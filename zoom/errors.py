"""What went wrong talking to Zoom, decided in one place.

Hierarchy::

    ZoomError                    base; ``status`` (HTTP or None), ``code`` (Zoom's or None),
    │                            ``message`` (short, safe to log); ``retryable`` says whether
    │                            trying the same call again later can succeed
    ├── ZoomTransientError       5xx, 408, timeouts, connection errors and resets, malformed
    │                            answers: retry with backoff
    ├── ZoomRateLimited          429 (and the legacy HTTP 300 daily cap): retry after
    │   │                        ``retry_after`` seconds (None: Zoom gave no hint); ``daily``
    │   │                        when the per-day quota is used up (then retry_after runs to
    │   │                        Zoom's Retry-After, else to the next 00:00 UTC)
    │   └── ZoomPacingWait       not Zoom's answer: our pacer's next slot is further off
    │                            than the caller may hold its thread (``zoom.ratelimit``);
    │                            nothing was sent, and the work is deferred, not failed
    ├── ZoomAuthError            401 and OAuth client errors; ``token_rejected`` (code 124)
    │   │                        means "get a new access token and retry once"
    │   ├── ZoomGrantRevoked     the token endpoint said ``invalid_grant``: the grant (e.g. a
    │   │                        doctor's refresh token) is dead, a human must reconnect
    │   └── ZoomAppRefused       the token endpoint refused a server-to-server app itself
    │                            (``invalid_client``: revoked or wrong secret; a wrong account
    │                            id): every call of that app fails until its credentials change
    └── ZoomPermanentError       any other 4xx / 3xx: retrying the same request cannot help
        └── ZoomNotFound         404 or code 3001 ("Meeting does not exist")

The branches derive from telemed's error base (``foundation/errors.py``): transient
errors and rate limits are ``TransientError``, auth errors and permanent ones
``PermanentError``; a bare ``ZoomError`` is what ``classify_exception`` returns for an
exception it does not recognise (a bug rather than an outage), so it is not
``retryable`` and is treated as unexpected: a few retries, then the dead letters
(``workers/policy/retries.py`` decides how often and when, for every branch).

``classify_response`` and ``classify_exception`` are pure: every caller (the API client,
the token providers) goes through them, so the policy for "what is retryable" lives here.
Messages never carry tokens, URLs or response bodies: only Zoom's short error message,
scrubbed of anything that looks like a URL or a credential.
"""

from __future__ import annotations

import math
import re
import socket
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from telemed.foundation.errors import PermanentError, TelemedError, TransientError

INVALID_ACCESS_TOKEN = 124
MEETING_NOT_FOUND = 3001

_MAX_MESSAGE = 200
_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
# Long unbroken runs of token characters are credentials (access tokens, zak, pwd=...).
_CREDENTIAL_LIKE = re.compile(r"[A-Za-z0-9_\-.~+/=]{32,}")
_DAILY = re.compile(r"\bdaily\b", re.IGNORECASE)


class ZoomError(TelemedError):
    retryable: bool = False

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None) -> None:
        self.message = safe_message(message)
        self.status = status
        self.code = code
        super().__init__(self.message)

    def __str__(self) -> str:
        details = []
        if self.status is not None:
            details.append(f"HTTP {self.status}")
        if self.code is not None:
            details.append(f"code {self.code}")
        return f"{self.message} ({', '.join(details)})" if details else self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, status={self.status!r}, code={self.code!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructor arguments defeat Exception's default pickling, and
        # errors cross process boundaries (worker pools, result backends).
        return (_restore, (type(self), dict(self.__dict__)))


class ZoomTransientError(ZoomError, TransientError):
    retryable = True


class ZoomRateLimited(ZoomError, TransientError):
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 429,
        code: int | None = None,
        retry_after: float | None = None,
        daily: bool = False,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after
        self.daily = daily

    def __repr__(self) -> str:
        return (
            f"ZoomRateLimited({self.message!r}, status={self.status!r}, code={self.code!r}, "
            f"retry_after={self.retry_after!r}, daily={self.daily!r})"
        )


class ZoomPacingWait(ZoomRateLimited):
    """Our own pacer (``zoom.ratelimit``): this call would wait longer than its caller may
    hold a thread. Nothing was sent. ``wait_seconds``: the pacer's last answer;
    ``waited_seconds``: how long this call had waited already."""

    def __init__(self, message: str, *, wait_seconds: float, waited_seconds: float) -> None:
        super().__init__(message, status=None, retry_after=wait_seconds)
        self.wait_seconds = wait_seconds
        self.waited_seconds = waited_seconds

    def __repr__(self) -> str:
        return (f"ZoomPacingWait({self.message!r}, wait_seconds={self.wait_seconds!r}, "
                f"waited_seconds={self.waited_seconds!r})")


class ZoomAuthError(ZoomError, PermanentError):
    @property
    def token_rejected(self) -> bool:
        """Zoom refused the access token itself (expired or revoked): a new one may work."""
        return self.status == 401 and self.code == INVALID_ACCESS_TOKEN


class ZoomGrantRevoked(ZoomAuthError):
    pass


class ZoomAppRefused(ZoomAuthError):
    """Zoom refused a server-to-server app's credentials (raised by the account token
    provider): a clinic's whole Zoom account is out of reach until they are fixed."""


def app_refusal(error: ZoomError) -> ZoomError:
    """What a failed ``account_credentials`` grant means: a refusal that retrying cannot
    fix is the app's (``ZoomAppRefused``); outages, rate limits and bugs stay what they are."""
    if error.retryable or type(error) is ZoomError or isinstance(error, ZoomAppRefused):
        return error
    return ZoomAppRefused(error.message, status=error.status, code=error.code)


class ZoomPermanentError(ZoomError, PermanentError):
    pass


class ZoomNotFound(ZoomPermanentError):
    pass


# Decisions -----------------------------------------------------------------------------


def classify_response(
    status: int,
    headers: Mapping[str, str],
    body: Any,
    now: datetime,
) -> ZoomError | None:
    """The error a Zoom answer means, or None for success (2xx).

    ``body`` is the decoded JSON body or None. Handles both Zoom's API error shape
    ``{"code", "message"}`` and the OAuth endpoint's ``{"error", "reason"}``.
    """
    if 200 <= status < 300:
        return None
    code, message, oauth_error = _error_fields(body)
    message = message or _reason_phrase(status)
    headers = _lower_keys(headers)

    if oauth_error == "invalid_grant":
        return ZoomGrantRevoked(message, status=status, code=code)
    if oauth_error in {"invalid_client", "unauthorized_client"}:
        return ZoomAuthError(message, status=status, code=code)
    if status == 429 or status == 300:
        # HTTP 300 is how Zoom's older API reported the per-user daily create/update cap.
        daily = status == 300 or bool(_DAILY.search(message)) or _is_daily_header(headers)
        retry_after = parse_retry_after(headers.get("retry-after"), now)
        if daily and retry_after is None:
            retry_after = seconds_until_utc_midnight(now)
        return ZoomRateLimited(
            message, status=status, code=code, retry_after=retry_after, daily=daily
        )
    if status == 401:
        return ZoomAuthError(message, status=status, code=code)
    if status == 404 or code == MEETING_NOT_FOUND:
        return ZoomNotFound(message, status=status, code=code)
    if status >= 500 or status == 408:
        return ZoomTransientError(message, status=status, code=code)
    return ZoomPermanentError(message, status=status, code=code)


def classify_exception(exc: BaseException) -> ZoomError:
    """The error a failed call (no answer from Zoom) means.

    Only the exception's type goes into the message: requests' own text can quote URLs.
    """
    if isinstance(exc, ZoomError):
        return exc
    kind = type(exc).__name__
    if isinstance(exc, requests.exceptions.SSLError):
        # A certificate that does not verify will not verify on retry either; fail loudly.
        if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "certificate verify failed" in str(exc):
            return ZoomPermanentError(f"TLS certificate verification failed ({kind})")
        return ZoomTransientError(f"TLS handshake failed ({kind})")
    if isinstance(exc, (requests.exceptions.Timeout, socket.timeout, TimeoutError)):
        return ZoomTransientError(f"request timed out ({kind})")
    if isinstance(exc, (requests.exceptions.ConnectionError, ConnectionError)):
        return ZoomTransientError(f"connection failed ({kind})")
    if isinstance(
        exc,
        (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError),
    ):
        return ZoomTransientError(f"response was cut off ({kind})")
    if isinstance(
        exc,
        (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            requests.exceptions.InvalidHeader,
        ),
    ):
        return ZoomPermanentError(f"request could not be built ({kind})")
    if isinstance(exc, requests.exceptions.RequestException):
        return ZoomTransientError(f"request failed ({kind})")
    if isinstance(exc, OSError):
        return ZoomTransientError(f"network error ({kind})")
    return ZoomError(f"unexpected error talking to Zoom ({kind})")


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After value: delay-seconds, an HTTP-date, or ISO 8601.

    Zoom documents both forms (``Retry-After: 2020-05-31T00:00:00Z`` for daily limits).
    A date in the past means "now" (0.0); anything unparseable means no hint (None).
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    when = _parse_date(value)
    if when is None:
        return None
    return max(0.0, (when - _aware(now)).total_seconds())


def seconds_until_utc_midnight(now: datetime) -> float:
    """Zoom's daily quotas reset at 00:00 UTC."""
    now = _aware(now).astimezone(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - now).total_seconds()


def safe_message(message: object) -> str:
    """A short single-line message with URLs and credential-like strings removed."""
    text = " ".join(str(message).split())
    text = _URL.sub("<url>", text)
    text = _CREDENTIAL_LIKE.sub("<redacted>", text)
    if len(text) > _MAX_MESSAGE:
        text = text[: _MAX_MESSAGE - 1] + "…"
    return text or "Zoom error"


# Helpers -------------------------------------------------------------------------------


def _restore(cls: type[ZoomError], state: dict[str, Any]) -> ZoomError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


def _error_fields(body: Any) -> tuple[int | None, str | None, str | None]:
    if not isinstance(body, Mapping):
        return None, None, None
    raw_code = body.get("code")
    code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
    message = body.get("message") or body.get("reason")
    oauth_error = body.get("error") if isinstance(body.get("error"), str) else None
    if not isinstance(message, str):
        message = oauth_error
    return code, message, oauth_error


def _reason_phrase(status: int) -> str:
    try:
        from http import HTTPStatus

        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _is_daily_header(headers: Mapping[str, str]) -> bool:
    return "daily" in headers.get("x-ratelimit-type", "").lower()


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(key).lower(): str(value) for key, value in headers.items()}


def _parse_date(value: str) -> datetime | None:
    try:
        return _aware(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError):
        pass
    try:
        return _aware(datetime.fromisoformat(value))
    except ValueError:
        return None


def _aware(moment: datetime) -> datetime:
    # Naive datetimes from callers or from a zone-less date header are taken as UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
