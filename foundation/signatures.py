"""The one error of every signed request telemed checks: booking systems' events
(``events.signing``) and Zoom's webhooks (``zoom.webhooks``)."""

from __future__ import annotations

from telemed.foundation.errors import PermanentError


class SignatureError(PermanentError, ValueError):
    """The request is not signed, badly signed, or signed too long ago (or ahead).

    ``reason`` is a short label for metrics (``missing``, ``malformed``, ``expired``,
    ``mismatch``); the message is safe to return to the caller. A client's error (401 at
    the door), never retried; still a ``ValueError`` for its callers.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)
