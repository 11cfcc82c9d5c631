"""The reconciler: re-queues whatever the store says is unfinished (principle 1).

A lost message (killed worker, Redis restart or FLUSHALL) therefore delays work but
never loses it. It looks at:

- inbox events still pending (→ ``process_event``);
- appointments behind on version, with a stale open intent, or whose meeting does not
  match the desired state (deleted in Zoom, or still live after a cancel) (→ ``sync_meeting``);
- outbox rows pending and due (→ ``deliver_notification``);
- Zoom webhook receipts still pending (→ ``process_zoom_webhook``).

Only rows older than a grace period are touched, so work that is simply still in the
queue is not queued twice in the normal case (twice is harmless anyway).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from telemed.store import appointments, inbox, intents, operations, outbox
from telemed.store.db import Database
from telemed.store.models import utcnow

DEFAULT_GRACE = timedelta(seconds=30)


@dataclass(frozen=True)
class ReconcileReport:
    events: int
    appointments: int
    notifications: int
    webhooks: int = 0

    @property
    def total(self) -> int:
        return self.events + self.appointments + self.notifications + self.webhooks


def reconcile(
    database: Database,
    *,
    enqueue_event: Callable[[str], object],
    enqueue_sync: Callable[[str], object],
    enqueue_notification: Callable[[int], object],
    enqueue_zoom_webhook: Callable[[int], object] | None = None,
    grace: timedelta = DEFAULT_GRACE,
) -> ReconcileReport:
    cutoff = utcnow() - grace
    with database.session() as session:
        event_ids = inbox.pending_event_ids(session, cutoff)
        appointment_ids = set(appointments.unsynced_appointment_ids(session, cutoff))
        appointment_ids.update(i.appointment_id for i in intents.stale_open_intents(session, cutoff))
        appointment_ids.update(operations.drifted_appointment_ids(session, cutoff))
        outbox_ids = outbox.due_message_ids(session, cutoff)
        receipt_ids = operations.pending_receipt_ids(session, cutoff) if enqueue_zoom_webhook else []
    for event_id in event_ids:
        enqueue_event(event_id)
    for appointment_id in sorted(appointment_ids):
        enqueue_sync(appointment_id)
    for outbox_id in outbox_ids:
        enqueue_notification(outbox_id)
    for receipt_id in receipt_ids:
        assert enqueue_zoom_webhook is not None
        enqueue_zoom_webhook(receipt_id)
    return ReconcileReport(len(event_ids), len(appointment_ids), len(outbox_ids), len(receipt_ids))
