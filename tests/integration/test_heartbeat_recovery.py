"""The heartbeat thread's forced maintenance, on a real Redis: a worker that fetched a
message and died (its heartbeat stopped) gets it taken back by the next beat of a live
worker once the dead one's heartbeat is older than the timeout, not by a random
maintenance hit minutes later (workers/queue/broker.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from dramatiq.message import Message

from telemed.workers.queue.broker import beat, maintainer
from telemed.workers.queue.poison import PoisonAwareRedisBroker

pytestmark = pytest.mark.integration
TIMEOUT_MS = 300


@pytest.fixture
def brokers(redis_url: str, redis_namespace: str, redis_client: Any) -> Iterator[list[PoisonAwareRedisBroker]]:
    # No random maintenance at all: only the heartbeat thread's beat can recover anything.
    made = [PoisonAwareRedisBroker(url=redis_url, namespace=redis_namespace, heartbeat_timeout=TIMEOUT_MS,
                                   maintenance_chance=0) for _ in range(2)]
    for broker in made:
        broker.declare_queue("work")
    yield made
    for broker in made:
        broker.close()


def _waiting(broker: PoisonAwareRedisBroker) -> int:
    """Messages in the queue's list, fetched by nobody."""
    return int(broker.client.llen(f"{broker.namespace}:work"))


def test_a_live_workers_beat_takes_back_what_a_dead_worker_fetched(brokers) -> None:  # type: ignore[no-untyped-def]
    dead, live = brokers
    sent = Message(queue_name="work", actor_name="noop", args=(), kwargs={}, options={})
    dead.enqueue(sent)
    fetched = next(dead.consume("work"))  # fetched, never acked: the worker was killed here
    assert fetched is not None and fetched.message_id == sent.message_id
    handle = maintainer(live)
    beat(handle, "work")
    assert _waiting(live) == 0, "a fresh heartbeat: the message is still the dead worker's"

    time.sleep(TIMEOUT_MS / 1000 + 0.2)
    beat(handle, "work")
    assert _waiting(live) == 1
    consumer = live.consume("work")
    again = next(consumer)
    assert again is not None and again.message_id == sent.message_id
    consumer.ack(again)


def test_the_beat_keeps_the_live_workers_own_messages(brokers) -> None:  # type: ignore[no-untyped-def]
    _, live = brokers
    live.enqueue(Message(queue_name="work", actor_name="noop", args=(), kwargs={}, options={}))
    consumer = live.consume("work")
    mine = next(consumer)
    assert mine is not None
    handle = maintainer(live)
    for _ in range(3):  # its own heartbeat, through the handle, keeps it alive past the timeout
        time.sleep(TIMEOUT_MS / 1000 / 2)
        beat(handle, "work")
    assert _waiting(live) == 0
    consumer.ack(mine)
