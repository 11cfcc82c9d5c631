"""Redis locks that live only as long as their holder: a short TTL, renewed while held.

A lock with a long TTL outlives a SIGKILLed worker by that TTL: the crash test
(tests/chaos) saw an appointment wait two minutes for a dead worker's sync lock. Here the
TTL is short and a small thread extends it while the work runs, so a crashed holder's
lock frees itself within ``LEASE_TTL_S`` and a slow Zoom call never loses it. Losing it
anyway (Redis flushed or restarted) is harmless: the handlers are idempotent; the lock
only saves duplicate work.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import LockError

LEASE_TTL_S = 15.0


@dataclass
class _Lease:
    lock: Any
    token: Any
    interval: float
    due: float


class _Keeper:
    """One thread per process renews every held lease (a thread per lock would cost a
    thread start and two context switches on every delivery and sync)."""

    def __init__(self) -> None:
        self._leases: dict[int, _Lease] = {}
        self._wake = threading.Condition()
        self._pid = 0  # the process the thread was started in (forked children start their own)
        self._next_id = 0

    def hold(self, lock: Any, interval: float) -> int:
        token = getattr(lock.local, "token", None)  # redis-py keeps it per thread by default
        with self._wake:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._leases.clear()
                threading.Thread(target=self._run, name="lock-leases", daemon=True).start()
            self._next_id += 1
            self._leases[self._next_id] = _Lease(lock, token, interval, time.monotonic() + interval)
            self._wake.notify()
            return self._next_id

    def release(self, lease_id: int) -> None:
        with self._wake:
            self._leases.pop(lease_id, None)

    def _run(self) -> None:
        while True:
            with self._wake:
                now = time.monotonic()
                due = [(i, lease) for i, lease in self._leases.items() if lease.due <= now]
                for _, lease in due:
                    lease.due = now + lease.interval
                if not due:
                    soonest = min((lease.due for lease in self._leases.values()), default=now + 60)
                    self._wake.wait(max(0.01, soonest - now))
                    continue
            for lease_id, lease in due:
                if not self._renew(lease):
                    self.release(lease_id)  # expired or flushed: nothing to hold any more

    @staticmethod
    def _renew(lease: _Lease) -> bool:
        lease.lock.local.token = lease.token  # this thread acts for the holder
        try:
            lease.lock.reacquire()
        except (LockError, redis.RedisError):
            return False
        return True


_keeper = _Keeper()


@contextmanager
def renewed(lock: Any, every: float | None = None) -> Iterator[None]:
    """Keep an acquired ``redis.lock.Lock`` alive until the block ends."""
    interval = every if every is not None else max(0.5, float(lock.timeout or LEASE_TTL_S) / 3)
    lease_id = _keeper.hold(lock, interval)
    try:
        yield
    finally:
        _keeper.release(lease_id)
