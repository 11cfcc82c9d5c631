"""A renewed lock outlives a slow holder and frees itself soon after a dead one."""

from __future__ import annotations

import threading
import time
from typing import Any

import fakeredis
import pytest

from telemed.workers.leases import renewed


def test_a_held_lock_is_renewed_and_a_dropped_one_expires() -> None:
    client = fakeredis.FakeRedis()
    lock = client.lock("telemed:lock:sync:A-1", timeout=0.6)
    assert lock.acquire(blocking=False)
    with renewed(lock, every=0.1):
        time.sleep(1.2)  # twice the TTL: only the renewal keeps it
        assert client.lock("telemed:lock:sync:A-1", timeout=0.6).acquire(blocking=False) is False
    # The holder is gone (as after SIGKILL: nothing released it). Leaving the block does
    # not release the lock either: it is still held now, and expires by itself within the TTL.
    assert client.lock("telemed:lock:sync:A-1", timeout=0.6).acquire(blocking=False) is False
    time.sleep(0.8)
    assert client.lock("telemed:lock:sync:A-1", timeout=0.6).acquire(blocking=False) is True


def test_losing_the_lock_stops_the_renewal_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    thread_errors: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: thread_errors.append(args.exc_value))
    client = fakeredis.FakeRedis()
    lock = client.lock("telemed:lock:outbox:1", timeout=0.5)
    assert lock.acquire(blocking=False)
    attempts = _count_renewals(lock)
    with renewed(lock, every=0.05):
        time.sleep(0.2)
        assert attempts, "renewed while held"
        client.flushall()  # Redis forgot everything
        time.sleep(0.2)  # the next renewal finds the lock gone...
        after_loss = len(attempts)
        time.sleep(0.3)
        assert len(attempts) == after_loss, "...and renewal stops: no attempt after that"
        assert client.exists("telemed:lock:outbox:1") == 0  # nor does it bring the lock back
    # Quietly: no error escaped the renewal thread, which carries on for other holders.
    other = client.lock("telemed:lock:outbox:2", timeout=0.3)
    assert other.acquire(blocking=False)
    with renewed(other, every=0.05):
        time.sleep(0.6)  # twice its TTL
        assert client.lock("telemed:lock:outbox:2", timeout=0.3).acquire(blocking=False) is False
    assert thread_errors == []


def _count_renewals(lock: Any) -> list[float]:
    """Record each renewal attempt of ``lock`` (the real call still runs)."""
    attempts: list[float] = []
    reacquire = lock.reacquire

    def counted() -> Any:
        attempts.append(time.monotonic())
        return reacquire()

    lock.reacquire = counted
    return attempts
