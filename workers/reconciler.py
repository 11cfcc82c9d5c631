"""The reconciler: re-queues whatever the store says is unfinished (principle 1).

A lost message (killed worker, Redis restart or FLUSHALL) therefore delays work but
never loses it. Only rows older than a grace period are touched, so work that is simply
still in the queue is not queued twice in the normal case (twice is harmless anyway).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from store import appointments, inbox, intents, outbox
from store.db import Database
from store.models import utcnow


@dataclass(frozen=True)
class ReconcileReport:
    events: int
    appointments: int
    notifications: int

    @property
    def total(self) -> int:
        return self.events + self.appointments + self.notifications


def reconcile(
    database: Database,
    *,
    enqueue_event: Callable[[str], None],
    enqueue_sync: Callable[[str], None],
    enqueue_notification: Callable[[int], None],
    grace: timedelta = timedelta(seconds=30),
) -> ReconcileReport:
    cutoff = utcnow() - grace
    with database.session() as session:
        event_ids = inbox.pending_event_ids(session, cutoff)
        appointment_ids = set(appointments.unsynced_appointment_ids(session, cutoff))
        appointment_ids.update(i.appointment_id for i in intents.stale_open_intents(session, cutoff))
        outbox_ids = outbox.due_message_ids(session, cutoff)
    for event_id in event_ids:
        enqueue_event(event_id)
    for appointment_id in sorted(appointment_ids):
        enqueue_sync(appointment_id)
    for outbox_id in outbox_ids:
        enqueue_notification(outbox_id)
    return ReconcileReport(len(event_ids), len(appointment_ids), len(outbox_ids))
