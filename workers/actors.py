"""The actors: thin wrappers that take ids, call the pipeline and queue what follows.

The broker is installed from settings on import, before any actor is declared, because
Dramatiq otherwise quietly builds a default broker.
Every exception passes through ``retry_policy.classify``: the one place retry decisions
are made.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import dramatiq

from telemed.settings import get_settings
from workers.broker import install_broker

# A broker set up beforehand (a test's, the demo's) wins; otherwise settings decide.
broker = dramatiq.broker.global_broker or install_broker(get_settings())

from workers import apply_event as _apply  # noqa: E402
from workers import delivery as _delivery  # noqa: E402
from workers import sync as _sync  # noqa: E402
from workers.context import get_context  # noqa: E402
from workers.retry_policy import PermanentFailure, classify  # noqa: E402

F = TypeVar("F", bound=Callable[..., Any])


def _classified(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BaseException as exc:
            mapped = classify(exc)
            if mapped is exc:
                raise
            raise mapped from None

    return wrapper  # type: ignore[return-value]


@dramatiq.actor(queue_name="events", max_retries=10, throws=(PermanentFailure,))
@_classified
def process_event(event_id: str) -> None:
    appointment_id = _apply.apply_event(get_context().database, event_id)
    if appointment_id is not None:
        sync_meeting.send(appointment_id)


@dramatiq.actor(queue_name="meetings", max_retries=12, throws=(PermanentFailure,))
@_classified
def sync_meeting(appointment_id: str) -> None:
    outcome = _sync.sync_meeting(get_context(), appointment_id)
    for outbox_id in outcome.notifications:
        deliver_notification.send(outbox_id)
    if outcome.resync:
        sync_meeting.send(appointment_id)


@dramatiq.actor(queue_name="notifications", max_retries=8, throws=(PermanentFailure,),
                on_retry_exhausted="notification_failed")
@_classified
def deliver_notification(outbox_id: int) -> None:
    try:
        result = _delivery.deliver_notification(get_context(), outbox_id)
    except Exception as exc:
        mapped = classify(exc)
        if isinstance(mapped, PermanentFailure):
            for alert_id in _delivery.give_up(get_context(), outbox_id, str(mapped)):
                deliver_notification.send(alert_id)
        raise
    for follow_up in result.follow_ups:  # admin alerts raised while delivering
        deliver_notification.send(follow_up)


@dramatiq.actor(queue_name="notifications", max_retries=3)
def notification_failed(message_data: dict[str, Any], retry_info: dict[str, Any]) -> None:
    outbox_id = int(message_data["args"][0])
    for alert_id in _delivery.give_up(get_context(), outbox_id, f"gave up after {retry_info.get('retries')} attempts"):
        deliver_notification.send(alert_id)


@dramatiq.actor(queue_name="events", max_retries=10, throws=(PermanentFailure,))
@_classified
def process_zoom_webhook(receipt_id: int) -> None:
    from workers.zoom_events import handle_zoom_webhook

    follow_up = handle_zoom_webhook(get_context(), receipt_id)
    for appointment_id in follow_up.sync:
        sync_meeting.send(appointment_id)
    for outbox_id in follow_up.notifications:
        deliver_notification.send(outbox_id)
