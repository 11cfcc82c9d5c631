"""Queueing the pipeline's work: ids only, by actor name, on the broker it is given.

Everything that starts work (the publisher, the web's retry buttons, the scheduler's
jobs, alerts raised mid-delivery, the actors' own follow-ups) goes through a
``WorkQueue``, so no module needs the actor objects, and the actors can be declared on
any broker (a test's ``StubBroker`` included) by ``workers.actors.declare_actors``.
"""

from __future__ import annotations

from dataclasses import dataclass

import dramatiq
from dramatiq.message import Message

# Actor name -> queue. The actors are declared with these queues (workers.actors).
PROCESS_EVENT = "process_event"
SYNC_MEETING = "sync_meeting"
DELIVER_NOTIFICATION = "deliver_notification"
NOTIFICATION_FAILED = "notification_failed"
PROCESS_ZOOM_WEBHOOK = "process_zoom_webhook"
ACTOR_QUEUES: dict[str, str] = {
    PROCESS_EVENT: "events",
    SYNC_MEETING: "meetings",
    DELIVER_NOTIFICATION: "notifications",
    NOTIFICATION_FAILED: "notifications",
    PROCESS_ZOOM_WEBHOOK: "events",
}
QUEUES = ("events", "meetings", "notifications")


@dataclass(frozen=True)
class WorkQueue:
    broker: dramatiq.Broker

    def send(self, actor_name: str, *args: object, delay_ms: int | None = None) -> Message:
        """Queue ``actor_name(*args)``, after ``delay_ms`` if given; the broker's middleware
        runs as for ``actor.send``."""
        message: Message = Message(queue_name=ACTOR_QUEUES[actor_name], actor_name=actor_name,
                                   args=args, kwargs={}, options={})
        return self.broker.enqueue(message, delay=delay_ms)

    def process_event(self, event_id: str) -> Message:
        return self.send(PROCESS_EVENT, event_id)

    def sync_meeting(self, appointment_id: str) -> Message:
        return self.send(SYNC_MEETING, appointment_id)

    def deliver_notification(self, outbox_id: int, *, delay_ms: int | None = None) -> Message:
        return self.send(DELIVER_NOTIFICATION, outbox_id, delay_ms=delay_ms)

    def process_zoom_webhook(self, receipt_id: int) -> Message:
        return self.send(PROCESS_ZOOM_WEBHOOK, receipt_id)
