"""A renewed lock outlives a slow holder and frees itself soon after a dead one."""

from __future__ import annotations

import time

import fakeredis

from workers.meetings.leases import renewed


def test_a_held_lock_is_renewed_and_a_dropped_one_expires() -> None:
    client = fakeredis.FakeRedis()
    lock = client.lock("telemed:lock:sync:A-1", timeout=0.6)
    assert lock.acquire(blocking=False)
    with renewed(lock, every=0.1):
        time.sleep(1.2)  # twice the TTL: only the renewal keeps it
        assert client.lock("telemed:lock:sync:A-1", timeout=0.6).acquire(blocking=False) is False
    # The holder is gone (as after SIGKILL: nothing released it): the lock expires by itself.
    time.sleep(0.8)
    assert client.lock("telemed:lock:sync:A-1", timeout=0.6).acquire(blocking=False) is True


def test_losing_the_lock_stops_the_renewal_quietly() -> None:
    client = fakeredis.FakeRedis()
    lock = client.lock("telemed:lock:outbox:1", timeout=0.5)
    assert lock.acquire(blocking=False)
    with renewed(lock, every=0.05):
        client.flushall()  # Redis forgot everything
        time.sleep(0.2)
