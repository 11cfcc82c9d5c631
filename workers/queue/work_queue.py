"""Queueing the pipeline's work: ids only, by actor name, on the broker it is given.

Everything that starts work (the publisher, the web's retry buttons, the scheduler's
jobs, alerts raised mid-delivery, the actors' own follow-ups) goes through a
``WorkQueue``, so no module needs the actor objects, and the actors can be declared on
any broker (a test's ``StubBroker`` included) by ``workers.actors.declare_actors``.

Each message names the clinic whose work it is in its ``clinic`` option, for the clinic
gate (``workers.queue.clinic_gate``): the one the caller names, else the clinic of the
key the message carries (an event or appointment id: ``foundation.tenancy.clinic_of``),
else, for work a running message starts (a notification's follow-up, an alert), that
message's clinic.
"""

from __future__ import annotations

from dataclasses import dataclass

import dramatiq
from dramatiq.message import Message
from dramatiq.middleware import CurrentMessage

from telemed.foundation.tenancy import CLINIC_ID_PATTERN, clinic_of
from telemed.workers.queue.clinic_gate import CLINIC_OPTION, gate_clinic

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
# The clinic gate moves a clinic's waiting messages on in this order: a booking's later
# steps first, so a clinic finishes the bookings it started before it starts new ones.
PROMOTION_ORDER = ("notifications", "meetings", "events")


def clinic_of_work(args: tuple[object, ...]) -> str | None:
    """The clinic of the key a message carries first, if it carries one (an int id does not)."""
    if not args or not isinstance(args[0], str):
        return None
    clinic = clinic_of(args[0])
    return clinic if CLINIC_ID_PATTERN.match(clinic) else None


def current_clinic() -> str | None:
    """The clinic of the message this thread is running, if any."""
    message = CurrentMessage.get_current_message()
    return gate_clinic(message.options) if message is not None else None


@dataclass(frozen=True)
class WorkQueue:
    broker: dramatiq.Broker

    def send(self, actor_name: str, *args: object, delay_ms: int | None = None,
             clinic: str | None = None) -> Message:
        """Queue ``actor_name(*args)``, after ``delay_ms`` if given, as work of ``clinic``
        (by default: see the module's doc); the broker's middleware runs as for ``actor.send``."""
        owner = clinic or clinic_of_work(args) or current_clinic()
        message: Message = Message(queue_name=ACTOR_QUEUES[actor_name], actor_name=actor_name,
                                   args=args, kwargs={}, options={CLINIC_OPTION: owner} if owner else {})
        return self.broker.enqueue(message, delay=delay_ms)

    def process_event(self, event_id: str) -> Message:
        return self.send(PROCESS_EVENT, event_id)

    def sync_meeting(self, appointment_id: str) -> Message:
        return self.send(SYNC_MEETING, appointment_id)

    def deliver_notification(self, outbox_id: int, *, delay_ms: int | None = None,
                             clinic: str | None = None) -> Message:
        return self.send(DELIVER_NOTIFICATION, outbox_id, delay_ms=delay_ms, clinic=clinic)

    def process_zoom_webhook(self, receipt_id: int, *, clinic: str | None = None) -> Message:
        return self.send(PROCESS_ZOOM_WEBHOOK, receipt_id, clinic=clinic)
