"""The real actors, run by a Dramatiq worker on a stub broker, carry out the one retry
decision: their limits come from ``workers.policy.retries``, a bug is tried the same
few times whichever type it has, and a failure of the give-up step (a notification's
admin alert) is decided too, never left to escape as if it were transient."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import dramatiq
import pytest
import redis
import sqlalchemy.exc
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage, Retries

from telemed.workers.actors import Actors, declare_actors
from telemed.workers.context import WorkerContext
from telemed.workers.delivery import relay
from telemed.workers.policy.retries import ACTOR_MAX_RETRIES, UNEXPECTED_MAX_ATTEMPTS, PermanentFailure
from telemed.workers.queue.work_queue import (
    ACTOR_QUEUES,
    DELIVER_NOTIFICATION,
    NOTIFICATION_FAILED,
    PROCESS_EVENT,
    SYNC_MEETING,
)


def _broker() -> StubBroker:
    # The production broker's retry middleware, with backoffs of a few milliseconds.
    broker = StubBroker(middleware=[CurrentMessage(), Retries(min_backoff=1, max_backoff=5)])
    broker.emit_after("process_boot")
    return broker


def _tries(error: Exception, actor_name: str, send: Callable[[Actors], object]) -> tuple[int, int]:
    """How often the actor (and its give-up step) ran before giving up, and how many dead
    letters it left."""
    calls: list[int] = []

    def context() -> WorkerContext:  # the bug: the first thing each try does
        calls.append(1)
        raise error

    dead = _run(context, actor_name, send)
    return len(calls), dead


def _run(context: Callable[[], WorkerContext], actor_name: str, send: Callable[[Actors], object]) -> int:
    """Run the actors until ``actor_name``'s queue is empty; the number of dead letters."""
    broker = _broker()
    actors = declare_actors(broker, context)
    send(actors)
    worker = dramatiq.Worker(broker, worker_timeout=10, worker_threads=1)
    worker.start()
    try:
        broker.join(ACTOR_QUEUES[actor_name], fail_fast=False, timeout=20_000)
    finally:
        worker.stop()
    return len(broker.dead_letters)


@pytest.mark.parametrize("error", [TypeError("bug"), ValueError("bug"), KeyError("bug")],
                         ids=lambda e: type(e).__name__)
@pytest.mark.parametrize(("actor_name", "send"), [
    (PROCESS_EVENT, lambda a: a.process_event.send("E-1")),
    (SYNC_MEETING, lambda a: a.sync_meeting.send("A-1")),
    (NOTIFICATION_FAILED, lambda a: a.notification_failed.send({"args": [1]}, {"retries": 8})),
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


def _out_of_range() -> sqlalchemy.exc.DataError:
    # What PostgreSQL answers for an outbox id above its integer range.
    return sqlalchemy.exc.DataError("SELECT ...", {}, Exception("integer out of range"))


def test_an_id_the_database_refuses_is_given_up_at_once_though_the_alert_fails_too() -> None:
    """deliver_notification(2**31 + 1) on PostgreSQL (tests/fuzz found it): the delivery and
    then the admin alert of its give-up refuse the id. One try, one dead letter; it used to
    be retried with backoff for minutes, then once more through notification_failed."""
    big = 2**31 + 1
    assert _tries(_out_of_range(), DELIVER_NOTIFICATION, lambda a: a.deliver_notification.send(big)) == (2, 1)
    assert _tries(_out_of_range(), NOTIFICATION_FAILED,
                  lambda a: a.notification_failed.send({"args": [big]}, {"retries": 8})) == (1, 1)


def test_a_blip_in_the_give_up_step_retries_so_the_alert_is_not_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    steps: list[str] = []

    def deliver(ctx: object, outbox_id: int) -> object:
        steps.append("deliver")
        raise PermanentFailure("SMTP server refused (550)")

    def give_up(ctx: object, outbox_id: int, reason: str) -> list[int]:
        steps.append("give up")
        if steps.count("give up") == 1:
            raise sqlalchemy.exc.OperationalError("UPDATE outbox ...", {}, Exception("server closed the connection"))
        return []

    monkeypatch.setattr(relay, "deliver_notification", deliver)
    monkeypatch.setattr(relay, "give_up", give_up)
    context = SimpleNamespace(queue=SimpleNamespace(deliver_notification=lambda *a, **k: None),
                              settings=SimpleNamespace(zoom_pacing_hold_seconds=0.25))
    dead = _run(lambda: context, DELIVER_NOTIFICATION, lambda a: a.deliver_notification.send(7))  # type: ignore[arg-type,return-value]
    assert steps == ["deliver", "give up", "deliver", "give up"]
    assert dead == 1
