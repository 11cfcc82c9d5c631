"""The actors: thin wrappers that take ids, call the pipeline and queue what follows.

``declare_actors`` declares them on the broker it is given (the worker processes' Redis
broker, built by ``telemed.bootstrap``; a test's ``StubBroker``), so importing this
module connects to nothing and installs nothing. The work they do needs a
``WorkerContext``, given as a function so each process builds its own after fork.
Every failure gets one decision, ``workers.policy.retries.decide`` (retry when, or give
up why), with the try count of the message (Dramatiq's ``CurrentMessage``); the actors'
``max_retries`` come from the same module's ``ACTOR_MAX_RETRIES``.

A message runs with a bound on how long its thread may wait on a Zoom pacer
(TELEMED_ZOOM_PACING_HOLD_SECONDS, ``zoom.ratelimit.holding_at_most``). A longer wait is
decided as a deferral: the message is queued again, delayed to about when its slot is
due, with its try count unchanged, and this run ends; the thread takes other work (the
clinic gate, ``workers.queue.clinic_gate``, lets the deferred message in again when due).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import dramatiq
import structlog
from dramatiq.message import Message
from dramatiq.middleware import CurrentMessage

from telemed.foundation.tenancy import clinic_of
from telemed.workers import apply_event as _apply
from telemed.workers.context import WorkerContext
from telemed.workers.delivery import relay as _delivery
from telemed.workers.meetings import sync as _sync
from telemed.workers.meetings import zoom_events as _zoom_events
from telemed.workers.metrics import DEFERRALS
from telemed.workers.policy.retries import (
    ACTOR_MAX_RETRIES,
    Defer,
    GiveUp,
    PermanentFailure,
    decide,
    decide_failed_give_up,
    enact,
    may_defer,
)
from telemed.workers.queue.clinic_gate import DEFERRALS_OPTION
from telemed.workers.queue.work_queue import (
    ACTOR_QUEUES,
    DELIVER_NOTIFICATION,
    NOTIFICATION_FAILED,
    PROCESS_EVENT,
    PROCESS_ZOOM_WEBHOOK,
    SYNC_MEETING,
)
from telemed.zoom.ratelimit import holding_at_most

F = TypeVar("F", bound=Callable[..., Any])
log = structlog.get_logger("telemed.workers")


def _attempt() -> int:
    """This message's try number (1 for the first); 1 outside a worker (a direct call)."""
    message = CurrentMessage.get_current_message()
    return int(message.options.get("retries", 0)) + 1 if message is not None else 1


def _deferrals(message: Message[Any]) -> int:
    return int(message.options.get(DEFERRALS_OPTION, 0) or 0)


def _defer(broker: dramatiq.Broker, message: Message[Any], decision: Defer) -> None:
    """Queue this message again after the deferral's delay, its try count unchanged."""
    deferrals = _deferrals(message) + 1
    broker.enqueue(message.copy(options={DEFERRALS_OPTION: deferrals}), delay=decision.delay_ms)
    DEFERRALS.labels(actor=message.actor_name).inc()
    log.info("message deferred: its Zoom pacer is busy", actor=message.actor_name, delay_ms=decision.delay_ms,
             deferrals=deferrals)


def _decided(
    actor_name: str, broker: dramatiq.Broker, hold_seconds: Callable[[], float],
    on_give_up: Callable[..., None] | None = None,
) -> Callable[[F], F]:
    """Ask ``decide`` once about a failure and enact it; ``on_give_up`` runs with the
    actor's arguments and ``reason=`` before the message is given up (a notification's
    admin alert). hold_seconds(): how long the message may wait on a Zoom pacer. A
    failure of on_give_up is decided as well (decide_failed_give_up): retried if it
    may pass, else given up with both reasons."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            message = CurrentMessage.get_current_message()
            try:
                # Outside a worker (a direct call) nothing could run a deferral: wait as before.
                hold = hold_seconds() if message is not None and may_defer(_deferrals(message)) else None
                with holding_at_most(hold):
                    return fn(*args, **kwargs)
            except dramatiq.Retry:
                raise  # decided already (the outbox relay counts its own tries)
            except Exception as exc:  # noqa: BLE001 - every failure is decided; interrupts pass untouched
                attempt = _attempt()
                decision = decide(exc, attempt, actor=actor_name)
                if isinstance(decision, Defer) and message is not None and may_defer(_deferrals(message)):
                    _defer(broker, message, decision)
                    return None
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

    def hold() -> float:
        return context().settings.zoom_pacing_hold_seconds

    def decided(name: str, on_give_up: Callable[..., None] | None = None) -> Callable[[F], F]:
        return _decided(name, broker, hold, on_give_up)

    def alert_admin(outbox_id: int, *, reason: str) -> None:
        ctx = context()
        for alert_id in _delivery.give_up(ctx, outbox_id, reason):
            ctx.queue.deliver_notification(alert_id)

    @actor(PROCESS_EVENT, throws=(PermanentFailure,))
    @decided(PROCESS_EVENT)
    def process_event(event_id: str) -> None:
        ctx = context()
        appointment_id = _apply.apply_event(ctx.database, event_id)
        if appointment_id is not None:
            ctx.queue.sync_meeting(appointment_id)

    @actor(SYNC_MEETING, throws=(PermanentFailure,))
    @decided(SYNC_MEETING)
    def sync_meeting(appointment_id: str) -> None:
        ctx = context()
        outcome = _sync.sync_meeting(ctx, appointment_id)
        for outbox_id in outcome.notifications:
            ctx.queue.deliver_notification(outbox_id, clinic=clinic_of(appointment_id))
        if outcome.resync:
            ctx.queue.sync_meeting(appointment_id)

    # on_retry_exhausted: a backstop; the decision gives up (and alerts) before Dramatiq would.
    @actor(DELIVER_NOTIFICATION, throws=(PermanentFailure,), on_retry_exhausted=NOTIFICATION_FAILED)
    @decided(DELIVER_NOTIFICATION, on_give_up=alert_admin)
    def deliver_notification(outbox_id: int) -> None:
        ctx = context()
        result = _delivery.deliver_notification(ctx, outbox_id)
        for follow_up in result.follow_ups:  # admin alerts raised while delivering
            ctx.queue.deliver_notification(follow_up)
        if result.retry_after_ms is not None:  # an older mail to the same recipient goes first
            ctx.queue.deliver_notification(outbox_id, delay_ms=result.retry_after_ms)

    @actor(NOTIFICATION_FAILED, throws=(PermanentFailure,))
    @decided(NOTIFICATION_FAILED)
    def notification_failed(message_data: dict[str, Any], retry_info: dict[str, Any]) -> None:
        ctx = context()
        outbox_id = int(message_data["args"][0])
        for alert_id in _delivery.give_up(ctx, outbox_id, f"gave up after {retry_info.get('retries')} attempts"):
            ctx.queue.deliver_notification(alert_id)

    @actor(PROCESS_ZOOM_WEBHOOK, throws=(PermanentFailure,))
    @decided(PROCESS_ZOOM_WEBHOOK)
    def process_zoom_webhook(receipt_id: int) -> None:
        ctx = context()
        follow_up = _zoom_events.handle_zoom_webhook(ctx, receipt_id)
        for appointment_id in follow_up.sync:
            ctx.queue.sync_meeting(appointment_id)
        for outbox_id in follow_up.notifications:
            ctx.queue.deliver_notification(outbox_id)

    return Actors(process_event, sync_meeting, deliver_notification, notification_failed, process_zoom_webhook)
