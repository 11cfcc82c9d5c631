"""The real actors, run by a Dramatiq worker on a stub broker, carry out the one retry
decision: their limits come from ``workers.policy.retries``, and a bug is tried the same
few times whichever type it has."""

from __future__ import annotations

from collections.abc import Callable

import dramatiq
import pytest
import redis
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage, Retries

from telemed.workers.actors import Actors, declare_actors
from telemed.workers.context import WorkerContext
from telemed.workers.policy.retries import ACTOR_MAX_RETRIES, UNEXPECTED_MAX_ATTEMPTS
from telemed.workers.queue.work_queue import ACTOR_QUEUES, PROCESS_EVENT, SYNC_MEETING


def _broker() -> StubBroker:
    # The production broker's retry middleware, with backoffs of a few milliseconds.
    broker = StubBroker(middleware=[CurrentMessage(), Retries(min_backoff=1, max_backoff=5)])
    broker.emit_after("process_boot")
    return broker


def _tries(error: Exception, actor_name: str, send: Callable[[Actors], object]) -> tuple[int, int]:
    """How often the actor ran before giving up, and how many dead letters it left."""
    broker = _broker()
    calls: list[int] = []

    def context() -> WorkerContext:  # the bug: the first thing each try does
        calls.append(1)
        raise error

    actors = declare_actors(broker, context)
    send(actors)
    worker = dramatiq.Worker(broker, worker_timeout=10, worker_threads=1)
    worker.start()
    try:
        broker.join(ACTOR_QUEUES[actor_name], fail_fast=False, timeout=20_000)
    finally:
        worker.stop()
    return len(calls), len(broker.dead_letters)


@pytest.mark.parametrize("error", [TypeError("bug"), ValueError("bug"), KeyError("bug")],
                         ids=lambda e: type(e).__name__)
@pytest.mark.parametrize(("actor_name", "send"), [
    (PROCESS_EVENT, lambda a: a.process_event.send("E-1")),
    (SYNC_MEETING, lambda a: a.sync_meeting.send("A-1")),
])
def test_a_bug_is_tried_a_few_times_then_dead_lettered(
        error: Exception, actor_name: str, send: Callable[[Actors], object]) -> None:
    assert _tries(error, actor_name, send) == (UNEXPECTED_MAX_ATTEMPTS, 1)


def test_the_actors_limits_come_from_the_decision() -> None:
    actors = declare_actors(_broker(), context=lambda: None)  # type: ignore[arg-type,return-value]
    for actor in (actors.process_event, actors.sync_meeting, actors.deliver_notification,
                  actors.notification_failed, actors.process_zoom_webhook):
        assert actor.options["max_retries"] == ACTOR_MAX_RETRIES[actor.actor_name]


def test_the_workers_broker_tells_the_actors_their_try_count() -> None:
    from telemed.workers.queue.broker import build_broker

    broker = build_broker(redis.Redis.from_url("redis://127.0.0.1:1/0"), "t")  # built, never connected
    assert any(isinstance(middleware, CurrentMessage) for middleware in broker.middleware)
