"""The Redis consumer under load, on a real Redis: when every message it prefetched is
still being worked on, it waits for an acknowledgement and fetches again as soon as one
comes, instead of sleeping Dramatiq's idle-queue backoff while the queue is full.

Found with a wall-clock profile of one worker thread at 100 ms Zoom latency: the thread
sat idle 8 % of the time with messages waiting in Redis.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from dramatiq.message import Message

from telemed.workers.queue.poison import PoisonAwareConsumer, PoisonAwareRedisBroker

pytestmark = pytest.mark.integration
# The broker caps a consumer's idle poll at 100 ms; built directly, the consumer gets a
# timeout far longer than any wait below, so only an ack can end its wait in time.
LONG_IDLE_TIMEOUT_MS = 10_000


@pytest.fixture
def broker(redis_url: str, redis_namespace: str, redis_client: Any) -> Iterator[PoisonAwareRedisBroker]:
    broker = PoisonAwareRedisBroker(url=redis_url, namespace=redis_namespace)
    broker.declare_queue("work")
    yield broker
    broker.close()


def _enqueue(broker: PoisonAwareRedisBroker, n: int) -> list[str]:
    messages = [Message(queue_name="work", actor_name="noop", args=(i,), kwargs={}, options={}) for i in range(n)]
    for message in messages:
        broker.enqueue(message)
    return [m.message_id for m in messages]


def _next_in_thread(consumer: Any) -> tuple[threading.Thread, list[Any]]:
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(next(consumer)), daemon=True)
    thread.start()
    return thread, got


def test_a_saturated_consumer_fetches_again_as_soon_as_a_message_is_acked(broker) -> None:  # type: ignore[no-untyped-def]
    first_id, second_id = _enqueue(broker, 2)
    consumer = PoisonAwareConsumer(broker, "work", 1, LONG_IDLE_TIMEOUT_MS)
    first = next(consumer)
    assert first.message_id == first_id
    # A long idle spell before: Dramatiq's backoff would now sleep about the full timeout.
    consumer.inner.misses = 20

    thread, got = _next_in_thread(consumer)
    thread.join(0.3)
    assert thread.is_alive(), "a saturated consumer must wait for an ack, not spin"
    consumer.ack(first)
    thread.join(5)
    assert not thread.is_alive(), "the ack must wake the consumer, not its idle backoff"
    assert got == [None]  # one turn of the consumer thread's loop, then the fetch

    second = next(consumer)
    assert second.message_id == second_id
    consumer.ack(second)
    consumer.close()


def test_a_nack_frees_the_slot_too(broker) -> None:  # type: ignore[no-untyped-def]
    _, second_id = _enqueue(broker, 2)
    consumer = PoisonAwareConsumer(broker, "work", 1, LONG_IDLE_TIMEOUT_MS)
    first = next(consumer)
    consumer.inner.misses = 20
    thread, _ = _next_in_thread(consumer)
    thread.join(0.3)
    assert thread.is_alive()
    consumer.nack(first)
    thread.join(5)
    assert not thread.is_alive()
    assert next(consumer).message_id == second_id
    consumer.close()


def test_an_empty_queue_is_still_polled_with_backoff(broker) -> None:  # type: ignore[no-untyped-def]
    """Not saturated, nothing there: the ordinary idle path, which returns None after its
    backoff (at most the broker's 100 ms idle poll) so the worker can check for shutdown."""
    consumer = broker.consume("work", prefetch=4)
    thread, got = _next_in_thread(consumer)
    thread.join(5)
    assert not thread.is_alive() and got == [None]
    _enqueue(broker, 1)
    message = next(consumer)
    while message is None:
        message = next(consumer)
    consumer.ack(message)
    consumer.close()
