"""The actors: thin wrappers that take ids, call the pipeline and queue what follows.

``declare_actors`` declares them on the broker it is given (the worker processes' Redis
broker, built by ``telemed.bootstrap``; a test's ``StubBroker``), so importing this
module connects to nothing and installs nothing. The work they do needs a
``WorkerContext``, given as a function so each process builds its own after fork.
Every failure gets one decision, ``workers.policy.retries.decide`` (retry when, or give
up why), with the try count of the message (Dramatiq's ``CurrentMessage``); the actors'
``max_retries`` come from the same module's ``ACTOR_MAX_RETRIES``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import dramatiq
from dramatiq.middleware import CurrentMessage

from telemed.workers import apply_event as _apply
from telemed.workers.context import WorkerContext
from telemed.workers.delivery import relay as _delivery
from telemed.workers.meetings import sync as _sync
from telemed.workers.meetings import zoom_events as _zoom_events
from telemed.workers.policy.retries import (
    ACTOR_MAX_RETRIES,
    GiveUp,
    PermanentFailure,
    decide,
    decide_failed_give_up,
    enact,
)
from telemed.workers.queue.work_queue import (
    ACTOR_QUEUES,
    DELIVER_NOTIFICATION,
    NOTIFICATION_FAILED,
    PROCESS_EVENT,
    PROCESS_ZOOM_WEBHOOK,
    SYNC_MEETING,
)

F = TypeVar("F", bound=Callable[..., Any])


def _attempt() -> int:
    """This message's try number (1 for the first); 1 outside a worker (a direct call)."""
    message = CurrentMessage.get_current_message()
    return int(message.options.get("retries", 0)) + 1 if message is not None else 1


def _decided(actor_name: str, on_give_up: Callable[..., None] | None = None) -> Callable[[F], F]:
    """Ask ``decide`` once about a failure and enact it; ``on_give_up`` runs with the
    actor's arguments and ``reason=`` before the message is given up (a notification's
    admin alert). A failure of ``on_give_up`` is decided as well
    (``decide_failed_give_up``): retried if it may pass, else given up with both reasons."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except dramatiq.Retry:
                raise  # decided already (the outbox relay counts its own tries)
            except Exception as exc:  # noqa: BLE001 - every failure is decided; interrupts pass untouched
                attempt = _attempt()
                decision = decide(exc, attempt, actor=actor_name)
                if isinstance(decision, GiveUp) and on_give_up is not None:
                    try:
                        on_give_up(*args, reason=decision.reason, **kwargs)
                    except Exception as failed:  # noqa: BLE001 - decided too, never left to escape
                        # The arguments that failed the work often fail the give-up step as
                        # well (an id the database refuses): undecided, that was a retry.
                        decision = decide_failed_give_up(decision, failed, attempt, actor=actor_name)
                        if not isinstance(decision, GiveUp):
                            enact(decision, failed)
                enact(decision, exc)

        return wrapper  # type: ignore[return-value]

    return wrap


@dataclass(frozen=True)
class Actors:
    process_event: dramatiq.Actor[..., Any]
    sync_meeting: dramatiq.Actor[..., Any]
    deliver_notification: dramatiq.Actor[..., Any]
    notification_failed: dramatiq.Actor[..., Any]
    process_zoom_webhook: dramatiq.Actor[..., Any]


def declare_actors(broker: dramatiq.Broker, context: Callable[[], WorkerContext]) -> Actors:
    """Declare the pipeline's actors on ``broker``; ``context()`` gives this process's parts."""

    def actor(name: str, **options: Any) -> Callable[[Callable[..., Any]], dramatiq.Actor[..., Any]]:
        return dramatiq.actor(actor_name=name, queue_name=ACTOR_QUEUES[name], broker=broker,
                              max_retries=ACTOR_MAX_RETRIES[name], **options)

    def alert_admin(outbox_id: int, *, reason: str) -> None:
        ctx = context()
        for alert_id in _delivery.give_up(ctx, outbox_id, reason):
            ctx.queue.deliver_notification(alert_id)

    @actor(PROCESS_EVENT, throws=(PermanentFailure,))
    @_decided(PROCESS_EVENT)
    def process_event(event_id: str) -> None:
        ctx = context()
        appointment_id = _apply.apply_event(ctx.database, event_id)
        if appointment_id is not None:
            ctx.queue.sync_meeting(appointment_id)

    @actor(SYNC_MEETING, throws=(PermanentFailure,))
    @_decided(SYNC_MEETING)
    def sync_meeting(appointment_id: str) -> None:
        ctx = context()
        outcome = _sync.sync_meeting(ctx, appointment_id)
        for outbox_id in outcome.notifications:
            ctx.queue.deliver_notification(outbox_id)
        if outcome.resync:
            ctx.queue.sync_meeting(appointment_id)

    # on_retry_exhausted: a backstop; the decision gives up (and alerts) before Dramatiq would.
    @actor(DELIVER_NOTIFICATION, throws=(PermanentFailure,), on_retry_exhausted=NOTIFICATION_FAILED)
    @_decided(DELIVER_NOTIFICATION, on_give_up=alert_admin)
    def deliver_notification(outbox_id: int) -> None:
        ctx = context()
        result = _delivery.deliver_notification(ctx, outbox_id)
        for follow_up in result.follow_ups:  # admin alerts raised while delivering
            ctx.queue.deliver_notification(follow_up)
        if result.retry_after_ms is not None:  # an older mail to the same recipient goes first
            ctx.queue.deliver_notification(outbox_id, delay_ms=result.retry_after_ms)

    @actor(NOTIFICATION_FAILED, throws=(PermanentFailure,))
    @_decided(NOTIFICATION_FAILED)
    def notification_failed(message_data: dict[str, Any], retry_info: dict[str, Any]) -> None:
        ctx = context()
        outbox_id = int(message_data["args"][0])
        for alert_id in _delivery.give_up(ctx, outbox_id, f"gave up after {retry_info.get('retries')} attempts"):
            ctx.queue.deliver_notification(alert_id)

    @actor(PROCESS_ZOOM_WEBHOOK, throws=(PermanentFailure,))
    @_decided(PROCESS_ZOOM_WEBHOOK)
    def process_zoom_webhook(receipt_id: int) -> None:
        ctx = context()
        follow_up = _zoom_events.handle_zoom_webhook(ctx, receipt_id)
        for appointment_id in follow_up.sync:
            ctx.queue.sync_meeting(appointment_id)
        for outbox_id in follow_up.notifications:
            ctx.queue.deliver_notification(outbox_id)

    return Actors(process_event, sync_meeting, deliver_notification, notification_failed, process_zoom_webhook)
