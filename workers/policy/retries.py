"""Where every retry decision is made: an exception in, what Dramatiq should do out.

- rate limited → retry exactly when Zoom says (Retry-After, or the next 00:00 UTC for
  the daily cap), or after a short jittered pause for per-second limits;
- transient (5xx, timeouts, resets, SMTP 4xx, a database or Redis blip) → Dramatiq's
  exponential backoff with jitter (the broker's Retries middleware: 1 s doubling up to
  5 min), bounded by the actor's max_retries;
- permanent (a 4xx from Zoom, SMTP 5xx, a revoked grant, bad data) → no retry: the
  message goes to the dead letters with its reason (``PermanentFailure``).
"""

from __future__ import annotations

import random

import dramatiq
import redis
import sqlalchemy.exc

from telemed.zoom.errors import ZoomError, ZoomPermanentError, ZoomRateLimited, ZoomTransientError


class PermanentFailure(Exception):
    """Retrying cannot help. Carries a reason safe to log and show in the dead letters."""


SHORT_RATE_LIMIT_PAUSE_MS = (1_000, 3_000)
# Everything parked by the daily cap wakes at 00:00 UTC: spread it over a minute.
DAILY_RESET_SPREAD_MS = 60_000


def rate_limit_delay_ms(error: ZoomRateLimited, rng: random.Random | None = None) -> int:
    if error.retry_after is not None:
        # Jitter so a crowd of retries does not arrive in the same millisecond.
        spread = DAILY_RESET_SPREAD_MS if error.daily else 250
        return int(error.retry_after * 1000) + (rng or random).randint(0, spread)
    low, high = SHORT_RATE_LIMIT_PAUSE_MS
    return (rng or random).randint(low, high)


def classify(exc: BaseException) -> BaseException:
    """Map an exception to what the actor should raise for Dramatiq."""
    from telemed.workers.notifier.mail import PermanentDeliveryError, TransientDeliveryError

    if isinstance(exc, (dramatiq.Retry, PermanentFailure)):
        return exc
    if isinstance(exc, ZoomRateLimited):
        return dramatiq.Retry(str(exc), delay=rate_limit_delay_ms(exc))
    if isinstance(exc, (ZoomTransientError, TransientDeliveryError)):
        return exc
    if isinstance(exc, (ZoomPermanentError, PermanentDeliveryError)):
        return PermanentFailure(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, ZoomError):  # auth problems not cured by one refresh
        return PermanentFailure(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError, redis.RedisError)):
        return exc  # the store or queue blinked; back off and retry
    if isinstance(exc, sqlalchemy.exc.DataError):
        # The database refuses the value itself (an id out of integer range, a NUL in
        # text): the same value fails the same way every time (found by tests/fuzz).
        # Only the driver's first line, which names the problem and never the value.
        detail = (str(exc.orig).splitlines() or ["invalid value"])[0][:120]
        return PermanentFailure(f"the database refused a value: {detail}")
    return exc


# Per-channel retries of outbox rows (mail, webhook). The outbox counts the attempts, so
# the count survives a lost queue message; each limit stays within the
# deliver_notification actor's max_retries, so Dramatiq never gives up first.
OUTBOX_MAX_ATTEMPTS = {"mail": 8, "webhook": 8}
OUTBOX_MAX_DELAY_SECONDS = 3600.0


def outbox_retry_delay(
    channel: str, attempts: int, base_seconds: float, rng: random.Random | None = None
) -> float | None:
    """Seconds to wait after ``attempts`` failed tries, or None: give up and alert.

    Exponential from ``base_seconds`` (doubling), capped at an hour, with ±20 % jitter so
    a burst of failures does not come back in one wave.
    """
    if attempts >= OUTBOX_MAX_ATTEMPTS.get(channel, 6):
        return None
    delay = min(base_seconds * 2 ** max(attempts - 1, 0), OUTBOX_MAX_DELAY_SECONDS)
    return delay * (rng or random).uniform(0.8, 1.2)
