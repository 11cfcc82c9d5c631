"""Staying under Zoom's rate limits instead of bouncing off them, across every process.

Two limits, both shared through Redis so any number of workers on any number of hosts
count together:

- **per second, per account and category** (Zoom Pro: Medium 20/s for create and list,
  Light 30/s for get, update and delete). A pacer in one Lua script keeps the time the
  next call may go (Redis's clock, so hosts agree). A caller asks at the moment it wants
  to send: if that time has come it goes at once and the next time moves one interval on,
  otherwise it sleeps until then and asks again. The slot is taken when the call really
  goes, not reserved ahead: a thread that wakes late from its sleep (a busy CPU, the GIL)
  would otherwise send late while the next one sends on time, and the two arrive closer
  than the interval. Measured with reservations (``python -m benchmarks.zoom_limits
  --safety``, 2 processes x 8 threads, 30 s, 2 busy cores) the tightest 21 creates came
  ~60 ms closer than their spacing. The schedule stays anchored while callers keep up (a
  caller up to ``TOLERANCE_MS`` late keeps it; later, it starts again from now), so any
  21 consecutive calls span at least 20 intervals minus ``TOLERANCE_MS`` and the send
  delay; at ``SAFETY`` (95 %) of the plan's numbers that is more than Zoom's one second.
  Measured the same way: 6 trials of 20 s at 0.95, no 429, 19.0 creates/s, the tightest
  21 creates 1.039 s apart (ideal 1.053 s).
  That spacing is of slot times; Zoom counts arrivals. A request held up on its way (a
  busy CPU, the GIL, the network) while the one 20 slots later is not arrives closer: on
  a 2-core host whose CPU the benchmark's workers saturated, one create in 2,000 drew a
  429. So the script also keeps the times of the last ``limit`` slots and lets a call go
  only when the oldest is more than a second and ``WINDOW_ALLOWANCE_MS`` ago: any
  ``limit + 1`` consecutive slots span at least that, whatever the tolerance did, and a
  send may be held up 60 ms more than the one 20 slots later. Bare threads then arrive
  at the simulator at least 1.05 s apart per 21; a worker whose other threads keep the
  GIL busy can still, rarely, hold a send up longer (1 × 429 in one of two runs of
  benchmark item 3 on such a host, docs/benchmarks/runs). Zoom's Retry-After then
  brings the call back (``workers.policy.retries``).
  A caller that would wait longer than ``max_wait`` in all fails with a local
  :class:`~zoom.errors.ZoomRateLimited` and is retried later. Inside
  :func:`holding_at_most` (a worker running a message, ``workers.actors``) a caller
  that would wait longer than that bound in all fails at once with
  :class:`~zoom.errors.ZoomPacingWait` instead of sleeping on: its message is deferred
  and its thread is free for other work (another clinic's, whose pacer is not busy).
  It takes no slot, so the guarantees above hold for every call that does go. Only
  work that has sent nothing yet is deferred: after its first call went out, a message's
  further calls wait as any caller does (redoing a create costs more than the wait).
- **per host user per UTC day** for meeting create/update (Zoom: 100). A counter per host
  and date, expiring after the day; a reservation over the limit is undone and fails with
  ``daily=True`` and the seconds until 00:00 UTC.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime

import redis
import structlog

from telemed.zoom.errors import (
    ZoomPacingWait,
    ZoomRateLimited,
    ZoomTransientError,
    seconds_until_utc_midnight,
)

log = structlog.get_logger(__name__)

LIGHT = "Light"
MEDIUM = "Medium"
SAFETY = 0.95
TOLERANCE_MS = 15.0  # how late a caller may take its slot and keep the schedule
# How much longer than Zoom's one-second window any limit + 1 consecutive slots span: room
# for one request delayed on its way while a later one is not.
WINDOW_ALLOWANCE_MS = 60.0

# KEYS[1]: the pacer's next due time; KEYS[2]: the last ``count`` slot times, newest
# first. ARGV: emission interval (ms), tolerance (ms), count, window (ms).
# Returns 0 when this call may go now (and moves the schedule on), else the ms to wait
# before asking again (nothing taken).
_PACE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local count = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local due = tonumber(redis.call('GET', KEYS[1]) or '0')
if now < due then return tostring(due - now) end
local oldest = redis.call('LINDEX', KEYS[2], count - 1)
if oldest and now < tonumber(oldest) + window then return tostring(tonumber(oldest) + window - now) end
local next_due = now + interval
if now - due <= tonumber(ARGV[2]) then next_due = due + interval end
redis.call('SET', KEYS[1], tostring(next_due), 'PX', math.ceil(next_due - now) + 1000)
redis.call('LPUSH', KEYS[2], tostring(now))
redis.call('LTRIM', KEYS[2], 0, count - 1)
redis.call('PEXPIRE', KEYS[2], math.ceil(window) + 1000)
return '0'
"""

# KEYS[1]: the day's counter. ARGV: limit, seconds it lives. Returns the count or -1.
# The expiry is relative: Redis judges an absolute one by its own clock, which need not
# agree with ours (or with a test's fixed one).
_RESERVE = """
local used = redis.call('INCR', KEYS[1])
if used == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if used > tonumber(ARGV[1]) then
    redis.call('DECR', KEYS[1])
    return -1
end
return used
"""

# KEYS[1]: the day's counter. Only an existing, positive count is given back: a DECR on a
# counter that has expired would leave a negative one with no expiry, for ever.
_RELEASE = """
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then return redis.call('DECR', KEYS[1]) end
return 0
"""


# How long (ms) the running code may hold its thread waiting on a pacer; None: up to the
# limiter's max_wait, sleeping. Per thread (and task): set by the code that runs a message.
_HOLD_MS: ContextVar[float | None] = ContextVar("telemed_pacer_hold_ms", default=None)


@contextlib.contextmanager
def holding_at_most(seconds: float | None) -> Iterator[None]:
    """Within this block a pacer wait longer than ``seconds`` in all raises
    :class:`~zoom.errors.ZoomPacingWait` at once instead of sleeping (None: no bound),
    until the block's first call goes out: only work that has sent nothing is deferred."""
    token = _HOLD_MS.set(None if seconds is None else seconds * 1000.0)
    try:
        yield
    finally:
        _HOLD_MS.reset(token)


def _digest(value: str) -> str:
    # Redis keys name no account, doctor or email in clear.
    return hashlib.sha256(value.strip().lower().encode("utf-8")).hexdigest()[:20]


class RateLimiter:
    """The per-second pacer. ``acquire(scope, category)`` blocks until the call may go."""

    def __init__(
        self,
        redis_client: redis.Redis,
        per_second: Mapping[str, float],
        *,
        namespace: str = "telemed",
        safety: float = SAFETY,
        max_wait_seconds: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 0 < safety <= 1:
            raise ValueError("safety must be in (0, 1]")
        if any(rate <= 0 for rate in per_second.values()):
            raise ValueError("rates must be positive")
        self._redis = redis_client
        self._interval_ms = {c: 1000.0 / (rate * safety) for c, rate in per_second.items()}
        # Zoom's count per second, whole: no more than this in any window of _window_ms.
        self._count = {c: max(1, int(rate)) for c, rate in per_second.items()}
        self._window_ms = 1000.0 + WINDOW_ALLOWANCE_MS
        self._namespace = namespace
        self._max_wait_ms = max_wait_seconds * 1000.0
        self._sleep = sleep
        self._script = redis_client.register_script(_PACE)

    def effective_rate(self, category: str) -> float | None:
        interval = self._interval_ms.get(category)
        if interval is None:
            return None
        return min(1000.0 / interval, self._count[category] * 1000.0 / self._window_ms)

    def acquire(self, scope: str, category: str) -> float:
        """Wait until this call may go; returns the seconds waited."""
        interval = self._interval_ms.get(category)
        if interval is None:
            return 0.0
        keys = self.keys(scope, category)
        args = [interval, TOLERANCE_MS, self._count[category], self._window_ms]
        waited_ms = 0.0
        hold_ms = _HOLD_MS.get()
        while True:
            try:
                raw = self._script(keys=keys, args=args)
            except redis.RedisError as exc:
                raise ZoomTransientError(f"rate limiter (Redis) unavailable ({type(exc).__name__})") from exc
            wait_ms = float(raw.decode() if isinstance(raw, bytes) else raw)
            if wait_ms <= 0:
                if hold_ms is not None:
                    # A call went out: from now on this work has something to lose (a
                    # meeting made but not yet recorded costs a search to adopt), so its
                    # further calls wait in the pacer rather than defer.
                    _HOLD_MS.set(None)
                return waited_ms / 1000.0
            if hold_ms is not None and waited_ms + wait_ms > hold_ms:
                raise ZoomPacingWait(f"local {category} pacer busy: deferring rather than holding a thread",
                                     wait_seconds=wait_ms / 1000.0, waited_seconds=waited_ms / 1000.0)
            if waited_ms + wait_ms > self._max_wait_ms:
                # Other callers keep taking the slots: retry once they have drained.
                raise ZoomRateLimited(
                    f"local {category} limit: waited for a slot beyond the wait limit",
                    status=None,
                    retry_after=self._max_wait_ms / 1000.0,
                )
            self._sleep(wait_ms / 1000.0)
            waited_ms += wait_ms

    def keys(self, scope: str, category: str) -> list[str]:
        """The pacer's Redis keys: the next due time, and the last slots (newest first, ms)."""
        # One hash tag for both keys: a script's keys must share a Redis Cluster slot.
        key = f"{self._namespace}:zoom:rate:{{{_digest(scope)}:{category.lower()}}}"
        return [key, f"{key}:sent"]

    def for_scope(self, scope: str) -> Callable[[str], float]:
        """The hook a :class:`~zoom.client.ZoomClient` calls before each request."""
        return lambda category: self.acquire(scope, category)


def _lifetime(reset_in: float) -> int:
    """Seconds a day's counter lives: to the reset, and an hour more for callers whose clock
    is behind (their key names the day they think it is)."""
    return int(reset_in) + 3600


class DailyQuota:
    """Create/update calls per host user per UTC day."""

    def __init__(
        self,
        redis_client: redis.Redis,
        limit: int,
        *,
        namespace: str = "telemed",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._redis = redis_client
        self.limit = limit
        self._namespace = namespace
        self._clock = clock
        self._script = redis_client.register_script(_RESERVE)
        self._release = redis_client.register_script(_RELEASE)

    def _key(self, host: str, now: datetime) -> str:
        return f"{self._namespace}:zoom:daily:{_digest(host)}:{now.astimezone(UTC).date().isoformat()}"

    def reserve(self, host: str) -> int:
        """Count one create/update for ``host`` today; raises the daily ZoomRateLimited."""
        now = self._clock()
        reset_in = seconds_until_utc_midnight(now)
        try:
            used = int(self._script(keys=[self._key(host, now)], args=[self.limit, _lifetime(reset_in)]))
        except redis.RedisError as exc:
            raise ZoomTransientError(f"daily quota (Redis) unavailable ({type(exc).__name__})") from exc
        if used < 0:
            raise ZoomRateLimited(
                f"daily limit ({self.limit}) of meeting create/update calls for this host reached",
                status=None,
                retry_after=reset_in,
                daily=True,
            )
        return used

    def release(self, host: str) -> None:
        """Give back a reservation for a call that was never sent."""
        with contextlib.suppress(redis.RedisError):
            self._release(keys=[self._key(host, self._clock())])

    def exhaust(self, host: str) -> None:
        """Zoom said the cap is reached (another app may share the host): stop for today."""
        now = self._clock()
        with contextlib.suppress(redis.RedisError):
            self._redis.set(self._key(host, now), self.limit, ex=_lifetime(seconds_until_utc_midnight(now)))

    def used(self, host: str) -> int:
        raw = self._redis.get(self._key(host, self._clock()))
        return int(raw) if raw is not None else 0
