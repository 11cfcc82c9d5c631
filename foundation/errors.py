"""telemed's error base: every error raised on purpose says whether trying again can help.

Hierarchy::

    TelemedError             base of the errors telemed raises on purpose; alone (a bare
    │                        ``ZoomError``: "Zoom failed in a way we do not recognise")
    │                        it is treated as unexpected, like a bug (below)
    ├── TransientError       the same work can succeed later: an outage, a timeout, a 5xx,
    │   │                    a rate limit, a race with another worker. Raised by the Zoom
    │   │                    client (``ZoomTransientError``, ``ZoomRateLimited``) and the
    │   │                    notifier (``TransientDeliveryError``, ``MeetingGone``)
    │   └── RetryLater       transient with a known wait, ``delay_ms``: another worker holds
    │                        the lock this work needs (``workers/meetings/sync.py``)
    └── PermanentError       the same work fails the same way every time: a refusal (Zoom
                             4xx, ``ZoomAuthError`` after its one token refresh, SMTP 5xx,
                             ``WebhookGone``), a revoked grant, stored data that breaks a rule
                             (``PermanentFailure``; ``InvalidMessage``: no valid mail can be
                             built from it), a client's bad request (``InvalidEvent``,
                             ``SignatureError``: answered with 4xx at the door, never retried)

How each is retried is decided in one place, ``workers/policy/retries.py`` (``decide``:
the exception and how many tries were made in, "retry after X ms" or "give up, because"
out), with every attempt limit beside it:

- ``TransientError`` and the libraries' outage errors (a database or Redis blip): retried
  with jittered exponential backoff (Zoom's rate limits: when Zoom says; ``RetryLater``:
  after its ``delay_ms``) until the actor's or the outbox channel's attempt limit, then
  given up like a permanent error;
- ``PermanentError``: never retried. The queue message goes to the dead letters with its
  reason; a notification that cannot be delivered becomes an admin alert;
- anything else (``TypeError``, ``ValueError``, ``KeyError``... raised by our own code or a
  library: a bug, or a failure nobody has classified yet) is unexpected, and every
  unexpected error is treated alike wherever it is raised: retried a few times with
  backoff (a race can look like a bug), then given up with its type named, so it reaches
  the dead letters (with its traceback) and, for a notification, an admin alert.

The libraries' own exception types (SQLAlchemy, redis, requests, smtplib) are mapped where
they are met: ``zoom/errors.py`` and ``workers/notifier/`` turn theirs into the branches
above; ``workers/policy/retries.py`` maps the store's and the queue's.
"""

from __future__ import annotations


class TelemedError(Exception):
    """An error telemed raises on purpose; its branch says what retrying can do."""


class TransientError(TelemedError):
    """Trying the same work again later can succeed."""


class RetryLater(TransientError):
    """Transient, and the wait is known: try again after ``delay_ms`` milliseconds."""

    def __init__(self, message: str, *, delay_ms: int) -> None:
        super().__init__(message)
        self.delay_ms = delay_ms

    def __reduce__(self) -> tuple[object, ...]:
        # A keyword-only argument defeats Exception's default pickling.
        return (_retry_later, (type(self), str(self), self.delay_ms))


class PermanentError(TelemedError):
    """Trying the same work again fails the same way: give up, with a reason."""


def _retry_later(cls: type[RetryLater], message: str, delay_ms: int) -> RetryLater:
    return cls(message, delay_ms=delay_ms)
