"""The clinic gate's scripts on Redis: on the real server when configured, and always on the
embedded one (its Lua runs in another interpreter).

Messages go through the broker's own enqueue and its consumer's fetch and ack, as in a
worker; what is asserted is read back from Redis: Dramatiq's queue lists and the gate's
keys.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from dramatiq.message import Message

from telemed.workers.queue.broker import build_broker
from telemed.workers.queue.gated_broker import GatedRedisBroker
from tests.conftest import REAL_REDIS_URL

pytestmark = pytest.mark.integration
LIMIT = 2


def _servers() -> list[str]:
    return ["embedded", "real"] if REAL_REDIS_URL else ["embedded"]


@pytest.fixture(params=_servers())
def client(request: pytest.FixtureRequest, embedded_redis: Any, redis_namespace: str) -> Iterator[redis.Redis]:
    url = REAL_REDIS_URL if request.param == "real" else embedded_redis.url
    client = redis.Redis.from_url(str(url))
    yield client
    for key in client.scan_iter(match=f"{redis_namespace}*", count=500):
        client.delete(key)
    client.close()


def _broker(client: redis.Redis, namespace: str, *, lease_seconds: float = 600.0) -> GatedRedisBroker:
    broker = build_broker(client, namespace, clinic_in_flight=LIMIT, clinic_lease_seconds=lease_seconds)
    assert isinstance(broker, GatedRedisBroker) and broker.gate is not None
    for queue in ("events", "meetings", "notifications"):
        broker.declare_queue(queue)
    return broker


def _send(broker: GatedRedisBroker, clinic: str | None, label: str, queue: str = "events",
          **options: Any) -> Message[Any]:
    if clinic is not None:
        options["clinic"] = clinic
    message: Message[Any] = Message(queue_name=queue, actor_name="work", args=(label,), kwargs={}, options=options)
    return broker.enqueue(message)


def _queued(client: redis.Redis, broker: GatedRedisBroker, queue: str = "events") -> list[str]:
    """The labels on Dramatiq's queue list, in order."""
    ids = client.lrange(f"{broker.namespace}:{queue}", 0, -1)
    bodies = [client.hget(f"{broker.namespace}:{queue}.msgs", i) for i in ids]
    return [Message.decode(bytes(body)).args[0] for body in bodies if isinstance(body, bytes)]


def _drain(broker: GatedRedisBroker, queue: str = "events") -> list[Any]:
    """Fetch everything queued now (as a worker's consumer does), without acking."""
    consumer = broker.consume(queue, prefetch=100, timeout=10)
    fetched = []
    while (message := next(consumer)) is not None:
        fetched.append(message)
    return [consumer, fetched]


def test_at_most_n_of_a_clinic_in_flight_the_rest_waits_and_others_pass(client, redis_namespace) -> None:  # type: ignore[no-untyped-def]
    broker = _broker(client, redis_namespace)
    for n in range(5):
        _send(broker, "north", f"N{n}")
    _send(broker, "south", "S0")
    _send(broker, None, "X0")  # no clinic: Dramatiq's own enqueue
    assert _queued(client, broker) == ["N0", "N1", "S0", "X0"]
    gate = broker.gate
    assert gate is not None
    assert (gate.in_flight("north"), gate.waiting("north")["events"]) == (LIMIT, 3)
    assert (gate.in_flight("south"), gate.waiting("south")["events"]) == (1, 0)
    assert gate.backlogged() == {"north"}


def test_each_ack_lets_the_clinics_next_message_in_first_come_first_served(client, redis_namespace) -> None:  # type: ignore[no-untyped-def]
    broker = _broker(client, redis_namespace)
    for n in range(6):
        _send(broker, "north", f"N{n}")
    ran: list[str] = []
    while len(ran) < 6:
        consumer, fetched = _drain(broker)
        assert len(fetched) <= LIMIT
        for message in fetched:
            ran.append(message.args[0])
            consumer.ack(message)
    assert ran == [f"N{n}" for n in range(6)]
    gate = broker.gate
    assert gate is not None and gate.in_flight("north") == 0 and gate.backlogged() == set()
    # The gate's ack is Dramatiq's ack too: nothing left in the worker's acks or the bodies.
    assert client.scard(f"{redis_namespace}:__acks__.{broker.broker_id}.events") == 0
    assert client.hlen(f"{redis_namespace}:events.msgs") == 0


def test_a_dead_lettered_message_gives_its_slot_back(client, redis_namespace) -> None:  # type: ignore[no-untyped-def]
    broker = _broker(client, redis_namespace)
    for n in range(3):
        _send(broker, "north", f"N{n}")
    consumer, fetched = _drain(broker)
    fetched[0].fail()
    consumer.nack(fetched[0])
    assert _queued(client, broker) == ["N2"]
    assert client.zcard(f"{redis_namespace}:events.XQ") == 1


def test_later_stages_first_and_a_returning_message_ahead_of_new_ones(client, redis_namespace) -> None:  # type: ignore[no-untyped-def]
    broker = _broker(client, redis_namespace)
    _send(broker, "north", "E0")
    _send(broker, "north", "E1")
    _send(broker, "north", "E2")  # waits
    _send(broker, "north", "M0", queue="meetings")  # waits
    _send(broker, "north", "M1", queue="meetings", retries=1)  # a retry back from its delay
    _send(broker, "north", "N0", queue="notifications")  # waits
    consumer, fetched = _drain(broker)
    order = []
    for message in fetched:
        consumer.ack(message)
        order += _queued(client, broker, "notifications") + _queued(client, broker, "meetings") + _queued(
            client, broker, "events")
        for queue in ("notifications", "meetings", "events"):
            client.delete(f"{redis_namespace}:{queue}")  # as if fetched by another worker
    assert order == ["N0", "M1"]
    gate = broker.gate
    assert gate is not None and gate.waiting("north") == {"notifications": 0, "meetings": 1, "events": 1}


def test_a_delayed_message_holds_no_slot_until_it_is_due(client, redis_namespace) -> None:  # type: ignore[no-untyped-def]
    broker = _broker(client, redis_namespace)
    message: Message[Any] = Message(queue_name="events", actor_name="work", args=("later",), kwargs={},
                                    options={"clinic": "north"})
    delayed = broker.enqueue(message, delay=60_000)
    gate = broker.gate
    assert gate is not None
    assert delayed.queue_name == "events.DQ" and gate.in_flight("north") == 0
    # Due: the worker moves it back as a plain enqueue (Dramatiq's handle_delayed_messages).
    broker.enqueue(delayed.copy(queue_name="events"))
    assert gate.in_flight("north") == 1 and _queued(client, broker) == ["later"]


def test_a_lost_messages_slot_comes_back_when_its_lease_runs_out(client, redis_namespace) -> None:  # type: ignore[no-untyped-def]
    broker = _broker(client, redis_namespace, lease_seconds=0.5)
    for n in range(4):
        _send(broker, "north", f"N{n}")
    client.delete(f"{redis_namespace}:events", f"{redis_namespace}:events.msgs")  # N0, N1 lost
    gate = broker.gate
    assert gate is not None and gate.pump() == 0  # leases still running: nothing moves
    time.sleep(0.7)  # the lease is judged by Redis's clock; both clocks run at the same rate
    assert gate.pump() == 2
    assert _queued(client, broker) == ["N2", "N3"]
    assert gate.backlogged() == set()


def test_a_message_another_worker_took_over_keeps_its_slot(client, redis_namespace) -> None:  # type: ignore[no-untyped-def]
    broker = _broker(client, redis_namespace)
    for n in range(3):
        _send(broker, "north", f"N{n}")
    consumer, fetched = _drain(broker)
    # This worker was thought dead: maintenance put N0 back for another worker.
    client.srem(f"{redis_namespace}:__acks__.{broker.broker_id}.events", fetched[0].options["redis_message_id"])
    consumer.ack(fetched[0])
    gate = broker.gate
    assert gate is not None and gate.in_flight("north") == LIMIT and gate.waiting("north")["events"] == 1
