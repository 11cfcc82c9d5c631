"""Delivery failures, split by what the caller should do next: the transient and permanent
branches of telemed's error base (``foundation/errors.py``); the relay asks
``workers/policy/retries.py`` when to try again.

Texts name the stage and the SMTP code only: never credentials, addresses, server replies
(they often echo the recipient) or message bodies, so they are safe to log and store.
"""

from __future__ import annotations

from telemed.foundation.errors import PermanentError, TelemedError, TransientError


class DeliveryError(TelemedError):
    """A message was not delivered. ``smtp_code`` is the server's reply code, if any."""

    def __init__(self, reason: str, *, smtp_code: int | None = None) -> None:
        super().__init__(reason)
        self.smtp_code = smtp_code


class TransientDeliveryError(DeliveryError, TransientError):
    """Try again later: connection refused/reset, timeout, 4xx reply."""


class MeetingGone(TransientDeliveryError):
    """Zoom no longer has the meeting this notice was being built for: usually a cancel or
    a move applied while the notice was on its way (a race, not an outage). The relay reads
    the appointment again: the notice is then superseded, or retried with the new meeting."""


class PermanentDeliveryError(DeliveryError, PermanentError):
    """Retrying this message will not help: 5xx reply, failed AUTH, TLS misconfiguration."""


class InvalidMessage(PermanentError, ValueError):
    """The stored data cannot make a valid message: a field breaks the notifier's rules
    (``messages``, ``calendar``, ``render``, ``mime``). Nothing was sent, and the same data
    fails the same way every time. The text names the field and the rule, never a value.
    A ``ValueError`` still, for the callers that validate with these types."""
