"""Where every retry decision is made: a failure and its attempt count in, what to do out.

``decide`` is the one decision, a plain function, for every failure of every actor and
outbox channel; the branches are telemed's error base (``foundation/errors.py``):

- rate limited (``ZoomRateLimited``) → retry exactly when Zoom says (Retry-After, or the
  next 00:00 UTC for the daily cap), or after a short jittered pause for per-second
  limits; ``RetryLater`` (a lock another worker holds) → after its ``delay_ms``;
- transient (``TransientError``: 5xx, timeouts, resets, SMTP 4xx; and a database or Redis
  blip) → jittered exponential backoff: for an actor the broker's Retries middleware's
  (1 s doubling up to 5 min, ``workers/queue/broker.py``), for an outbox row
  ``outbox_retry_delay`` (counted in the row, so the count survives a lost message);
- permanent (``PermanentError``: a 4xx from Zoom, SMTP 5xx, a revoked grant, bad data; and
  a value the database refuses; and work of a clinic that no longer exists,
  ``UnknownClinic``) → give up at once. A clinic's Zoom app refused (``ZoomAppRefused``)
  is permanent too, but for that clinic only: its own client, tokens and credentials
  failed, not anyone else's, and ``sync_meeting`` parks the appointment under the
  clinic's one alert instead of a dead letter; a fixed app resumes it
  (``workers.policy.app_failures``, ``workers.meetings.app_failures``);
- unexpected (anything else: ``TypeError``, ``ValueError``... from our code, a bare
  ``ZoomError``) → the same everywhere: the backoff above for at most
  ``UNEXPECTED_MAX_ATTEMPTS`` tries (a race can look like a bug), then give up naming the
  type. One rule, so a ``ValueError`` no longer fails a notification at once while a
  ``TypeError`` is retried a dozen times.

Not a failure at all: a Zoom call whose pacer would keep the thread waiting longer than a
short bound (``ZoomPacingWait``, raised only while a worker runs a message) → ``Defer``:
the message is queued again for about when its slot is due, without counting a try, so a
busy pacer never walks work towards the dead letters, and the thread is free meanwhile.
After ``MAX_DEFERRALS`` deferrals a message waits in the pacer like any other caller
(``may_defer``), so it cannot be passed over for ever.

Every retried failure gives up once its work's attempt limit is reached: ``ACTOR_MAX_RETRIES``
per actor (the actors are declared with them), ``OUTBOX_MAX_ATTEMPTS`` per outbox channel.
Giving up means: the queue message goes to the dead letters with the reason
(``PermanentFailure``), and a notification becomes an admin alert.

``workers.actors`` asks for the decision when an actor fails (and enacts it with
``enact``; if its give-up step, a notification's admin alert, fails in turn,
``decide_failed_give_up`` decides about that); the outbox relay asks for it when a send
fails (the row's own count) and raises the ``dramatiq.Retry`` it decided, which the
actor passes on untouched. Not a retry policy, and so not here: the Zoom client's one
token refresh on "401, code 124" (Zoom's protocol: that answer means "get a new access
token", ``zoom/client.py``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import NoReturn

import dramatiq
import redis
import sqlalchemy.exc

from telemed.foundation.errors import PermanentError, RetryLater, TransientError
from telemed.foundation.tenancy import UnknownClinic
from telemed.workers.notifier.errors import DeliveryError, InvalidMessage
from telemed.workers.queue.broker import DEFAULT_MAX_RETRIES
from telemed.workers.queue.work_queue import (
    DELIVER_NOTIFICATION,
    NOTIFICATION_FAILED,
    PROCESS_EVENT,
    PROCESS_ZOOM_WEBHOOK,
    SYNC_MEETING,
)
from telemed.zoom.errors import ZoomPacingWait, ZoomRateLimited


class PermanentFailure(PermanentError):
    """Retrying cannot help. Carries a reason safe to log and show in the dead letters."""


# Attempt limits --------------------------------------------------------------------------

# Per-channel tries of an outbox row (mail, webhook), counted in the row itself.
OUTBOX_MAX_ATTEMPTS = {"mail": 8, "webhook": 8}
OUTBOX_DEFAULT_MAX_ATTEMPTS = 6  # a channel not listed above
OUTBOX_MAX_DELAY_SECONDS = 3600.0

# Retries per actor after its first try; the actors are declared with these.
ACTOR_MAX_RETRIES = {
    PROCESS_EVENT: 10,
    SYNC_MEETING: 12,
    PROCESS_ZOOM_WEBHOOK: 10,
    # At least every channel's limit, so the row's own count always gives up first.
    DELIVER_NOTIFICATION: max(OUTBOX_MAX_ATTEMPTS.values()),
    NOTIFICATION_FAILED: 3,
}

# Tries of work that failed in a way nobody classified (a bug), wherever it runs.
UNEXPECTED_MAX_ATTEMPTS = 3

SHORT_RATE_LIMIT_PAUSE_MS = (1_000, 3_000)
# Everything parked by the daily cap wakes at 00:00 UTC: spread it over a minute.
DAILY_RESET_SPREAD_MS = 60_000

# Deferrals of one message before it may hold a thread in the pacer (up to the pacer's
# own max wait), and how far past the expected wait a deferred message comes back.
MAX_DEFERRALS = 20
DEFER_SPREAD = (1.0, 1.5)
DEFER_MIN_MS = 50

# A blip of the store or the queue: retrying is the cure.
_OUTAGES = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError, redis.RedisError)


# The decision --------------------------------------------------------------------------


@dataclass(frozen=True)
class Retry:
    """Try again after ``delay_ms``; None: after the broker's exponential backoff."""

    reason: str
    delay_ms: int | None = None


@dataclass(frozen=True)
class GiveUp:
    """Stop trying: dead letters (and, for a notification, an admin alert) with ``reason``."""

    reason: str


@dataclass(frozen=True)
class Defer:
    """Run again after ``delay_ms``, not counted as a try: the work waited, it did not fail."""

    reason: str
    delay_ms: int


Decision = Retry | GiveUp | Defer


def decide(
    exc: BaseException,
    attempt: int,
    *,
    actor: str | None = None,
    channel: str | None = None,
    base_seconds: float = 1.0,
    rng: random.Random | None = None,
) -> Decision:
    """What to do after ``exc`` ended try number ``attempt`` (1 for the first).

    Of an ``actor``'s message (Dramatiq counts the tries), or of an outbox row on
    ``channel`` (the row counts them; its backoff starts at ``base_seconds``).
    """
    if isinstance(exc, ZoomPacingWait):
        return Defer(_describe(exc), pacing_delay_ms(exc.wait_seconds, exc.waited_seconds, rng))
    if isinstance(exc, PermanentError):
        return GiveUp(_describe(exc))
    if isinstance(exc, UnknownClinic):
        # Deleted (or never known): retrying cannot bring it back.
        return GiveUp(f"clinic {exc} is not known (deleted?)")
    if isinstance(exc, sqlalchemy.exc.DataError):
        # The database refuses the value itself (an id out of integer range, a NUL in
        # text): the same value fails the same way every time (found by tests/fuzz).
        # Only the driver's first line, which names the problem and never the value.
        detail = (str(exc.orig).splitlines() or ["invalid value"])[0][:120]
        return GiveUp(f"the database refused a value: {detail}")
    known = isinstance(exc, (TransientError, *_OUTAGES))
    limit = _max_attempts(actor, channel)
    if not known:
        limit = min(limit, UNEXPECTED_MAX_ATTEMPTS)
    if attempt >= limit:
        if channel is not None and known:
            return GiveUp(f"gave up after repeated failures: {_describe(exc)}")
        what = "" if known else "unexpected "
        return GiveUp(f"gave up after {attempt} attempts: {what}{_describe(exc)}")
    reason = _describe(exc)
    if isinstance(exc, ZoomRateLimited):
        return Retry(reason, rate_limit_delay_ms(exc, rng))
    if isinstance(exc, RetryLater):
        return Retry(reason, exc.delay_ms)
    if channel is not None:
        delay = outbox_retry_delay(channel, attempt, base_seconds, rng)
        return Retry(reason, int(delay * 1000) if delay is not None else None)
    return Retry(reason)


def may_defer(deferrals: int) -> bool:
    """May a message deferred ``deferrals`` times already be deferred again?"""
    return deferrals < MAX_DEFERRALS


def pacing_delay_ms(wait_seconds: float, waited_seconds: float, rng: random.Random | None = None) -> int:
    """When a deferred message should come back: near the expected wait. The pacer's own
    answer when it alone is too long (the one-second window); when other callers kept
    taking the slots, about as long as this call has waited already. Spread, so deferred
    messages do not all come back in the same instant."""
    expected_ms = max(wait_seconds, waited_seconds) * 1000.0
    return int(max(expected_ms, DEFER_MIN_MS) * (rng or random).uniform(*DEFER_SPREAD))
def decide_failed_give_up(gave_up: GiveUp, exc: BaseException, attempt: int, *, actor: str | None = None) -> Decision:
    """Giving up runs a step of its own (a notification's admin alert), and that step
    failed with ``exc``: decided like any failure of the actor's try ``attempt``.

    Retry when the step may work next time (a database blip: the message comes back, and
    its work and the give-up run again; the alert is not lost). Otherwise give up all the
    same, with ``gave_up``'s reason and the step's: a value the step cannot use either (a
    poison id out of the database's integer range, found by tests/fuzz on PostgreSQL)
    used to escape undecided and be retried as if transient, over and over.
    """
    then = decide(exc, attempt, actor=actor)
    if isinstance(then, Retry):
        return then
    if then.reason == gave_up.reason:
        return gave_up
    return GiveUp(f"{gave_up.reason}; giving up failed too: {then.reason}")


def enact(decision: Decision, exc: Exception) -> NoReturn:
    """Raise what makes Dramatiq carry out ``decision`` about ``exc``. A deferral is the
    caller's to carry out (``workers.actors``: queued again, not retried); outside a
    worker it is raised as a plain retry after its delay."""
    if isinstance(decision, GiveUp):
        if isinstance(exc, PermanentFailure) and str(exc) == decision.reason:
            raise exc
        if isinstance(exc, (PermanentError, sqlalchemy.exc.DataError)):
            raise PermanentFailure(decision.reason) from None
        raise PermanentFailure(decision.reason) from exc  # keep the cause's traceback
    if decision.delay_ms is None:
        raise exc  # the broker's backoff; logs and metrics name the real error
    raise dramatiq.Retry(decision.reason, delay=decision.delay_ms) from None


def rate_limit_delay_ms(error: ZoomRateLimited, rng: random.Random | None = None) -> int:
    if error.retry_after is not None:
        # Jitter so a crowd of retries does not arrive in the same millisecond.
        spread = DAILY_RESET_SPREAD_MS if error.daily else 250
        return int(error.retry_after * 1000) + (rng or random).randint(0, spread)
    low, high = SHORT_RATE_LIMIT_PAUSE_MS
    return (rng or random).randint(low, high)


def outbox_retry_delay(
    channel: str, attempts: int, base_seconds: float, rng: random.Random | None = None
) -> float | None:
    """Seconds to wait after ``attempts`` failed tries, or None: give up and alert.

    Exponential from ``base_seconds`` (doubling), capped at an hour, with ±20 % jitter so
    a burst of failures does not come back in one wave.
    """
    if attempts >= OUTBOX_MAX_ATTEMPTS.get(channel, OUTBOX_DEFAULT_MAX_ATTEMPTS):
        return None
    delay = min(base_seconds * 2 ** max(attempts - 1, 0), OUTBOX_MAX_DELAY_SECONDS)
    return delay * (rng or random).uniform(0.8, 1.2)


def _max_attempts(actor: str | None, channel: str | None) -> int:
    if channel is not None:
        return OUTBOX_MAX_ATTEMPTS.get(channel, OUTBOX_DEFAULT_MAX_ATTEMPTS)
    if actor is not None and actor in ACTOR_MAX_RETRIES:
        return ACTOR_MAX_RETRIES[actor] + 1
    return DEFAULT_MAX_RETRIES + 1


def _describe(exc: BaseException) -> str:
    """The reason, safe to log and to store: our delivery errors' and ``PermanentFailure``'s
    texts are written for people already; anything else is named by its type, with only
    the first line of its text (which names a field, not the data)."""
    if isinstance(exc, (PermanentFailure, DeliveryError)):
        return str(exc)
    first_line = (str(exc).splitlines() or [""])[0][:160]
    if isinstance(exc, InvalidMessage):
        return f"could not build the message ({first_line})"
    return f"{type(exc).__name__}: {first_line}"
