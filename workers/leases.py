"""Redis locks that live only as long as their holder: a short TTL, renewed while held.

A lock with a long TTL outlives a SIGKILLed worker by that TTL: the crash test
(tests/chaos) saw an appointment wait two minutes for a dead worker's sync lock. Here the
TTL is short and a small thread extends it while the work runs, so a crashed holder's
lock frees itself within ``LEASE_TTL_S`` and a slow Zoom call never loses it. Losing it
anyway (Redis flushed or restarted) is harmless: the handlers are idempotent; the lock
only saves duplicate work.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from redis.exceptions import LockError

LEASE_TTL_S = 15.0


@contextmanager
def renewed(lock: Any, every: float | None = None) -> Iterator[None]:
    """Keep an acquired ``redis.lock.Lock`` alive until the block ends."""
    stop = threading.Event()
    interval = every if every is not None else max(0.5, float(lock.timeout or LEASE_TTL_S) / 3)

    token = getattr(lock.local, "token", None)  # redis-py keeps it per thread by default

    def renew() -> None:
        lock.local.token = token  # this thread acts for the holder
        while not stop.wait(interval):
            try:
                lock.reacquire()
            except (LockError, redis.RedisError):
                return  # expired or flushed: nothing to hold any more

    thread = threading.Thread(target=renew, name="lock-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
