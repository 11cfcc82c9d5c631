"""Zoom's rate limits as the simulator enforces them, and the 429 answers they produce.

Per-second limits are per account and rate-limit category (Light, Medium, ...) (an
account's plan may set its own, ``apps.AccountApp.rate_limits``), counted
over a sliding one-second window of arrival times; only answered requests count. A
request counts from when its request line came in, as at Zoom's edge, not from when this
Python process got round to checking it: on a busy host the simulator's own threads
(parsing, JSON, the GIL) would otherwise reorder and squeeze arrivals by tens of ms and
answer 429s that Zoom would not. The per-user daily cap
on meeting create/update lives in the state (it is a per-host count). Bodies and headers
follow Zoom's rate-limit documentation: ``X-RateLimit-Category``, ``X-RateLimit-Type``
(``QPS`` or ``Daily-limit``), and for the daily cap ``X-RateLimit-Limit``,
``X-RateLimit-Remaining`` and a ``Retry-After`` date at the next 00:00 UTC.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from telemed.zoom.simulator.wire import SimResponse

LIGHT = "Light"
MEDIUM = "Medium"
PRO_PLAN = {MEDIUM: 20.0, LIGHT: 30.0}
QPS_MESSAGE = "You have reached the maximum per-second rate limit for this API. Try again later."
DAILY_MESSAGE = (
    "You have exceeded the daily rate limit ({limit}) of Meeting Create/Update API requests "
    "permitted for this particular user. You may resume these requests at GMT 00:00:00."
)


class RateWindows:
    """Sliding one-second windows per (account, category)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], list[float]] = {}  # admitted arrival times, sorted
        self.per_second: dict[str, float] = {}  # category -> limit; absent: unlimited

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()

    def admit(
        self, account: str, category: str, arrived: float | None = None, *, limit: float | None = None,
    ) -> bool:
        """Count the request if every one-second window holding its arrival (``arrived``,
        on this object's clock; default: now) has room; False means answer 429. Checked
        out of order, a request must not fill a window that ends at a later arrival
        admitted before it. ``limit``: the account's own plan, instead of ``per_second``."""
        limit = limit if limit is not None else self.per_second.get(category)
        if limit is None:
            return True
        at = self._clock() if arrived is None else arrived
        with self._lock:
            times = self._windows.setdefault((account, category), [])
            if times:  # nothing arrives two seconds out of order: older ones hold no window
                del times[:bisect_right(times, times[-1] - 2.0)]
            if bisect_right(times, at) - bisect_right(times, at - 1.0) >= limit:
                return False
            for end in times[bisect_right(times, at):bisect_left(times, at + 1.0)]:
                if bisect_right(times, end) - bisect_right(times, end - 1.0) >= limit:
                    return False
            insort(times, at)
            return True


def qps_limited(category: str) -> SimResponse:
    return SimResponse(
        429,
        {"code": 429, "message": QPS_MESSAGE},
        {"X-RateLimit-Category": category, "X-RateLimit-Type": "QPS"},
    )


def daily_limited(limit: int | None, now: datetime) -> SimResponse:
    reset = (now.astimezone(UTC) + timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return SimResponse(
        429,
        {"code": 429, "message": DAILY_MESSAGE.format(limit=limit)},
        {
            "X-RateLimit-Category": MEDIUM,
            "X-RateLimit-Type": "Daily-limit",
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": "0",
            "Retry-After": reset.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
