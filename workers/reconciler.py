"""The reconciler: re-queues whatever the store says is unfinished (principle 1).

A lost message (killed worker, Redis restart or FLUSHALL) therefore delays work but
never loses it. It looks at:

- inbox events still pending (→ ``process_event``);
- appointments behind on version, with a stale open intent, or whose meeting does not
  match the desired state (deleted in Zoom, or still live after a cancel) (→ ``sync_meeting``);
- outbox rows pending and due (→ ``deliver_notification``, as work of the appointment's clinic);
- Zoom webhook receipts still pending (→ ``process_zoom_webhook``).

Only rows older than a grace period are touched, so work that is simply still in the
queue is not queued twice in the normal case (twice is harmless anyway).

Everything is queued through the work queue, so through the clinic gate
(``workers.queue.clinic_gate``). A clinic with messages waiting at the gate
(``skip_clinics``) has a backlog, not lost work: its pending rows are old because they
wait their turn, and queueing them again would only add copies behind them (thousands
per pass during a bulk import). Its rows are left alone until its backlog has drained;
a message of that clinic lost meanwhile is queued again then: later, never lost.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import timedelta

from telemed.foundation.tenancy import clinic_of
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
    enqueue_notification: Callable[..., object],  # (outbox_id, *, clinic=...)
    enqueue_zoom_webhook: Callable[[int], object] | None = None,
    grace: timedelta = DEFAULT_GRACE,
    skip_clinics: Collection[str] = frozenset(),
) -> ReconcileReport:
    cutoff = utcnow() - grace
    skip = frozenset(skip_clinics)

    def wanted(key: str) -> bool:
        return clinic_of(key) not in skip

    with database.session() as session:
        event_ids = inbox.pending_event_ids(session, cutoff, exclude_clinics=skip)
        appointment_ids = set(appointments.unsynced_appointment_ids(session, cutoff, exclude_clinics=skip))
        appointment_ids.update(i.appointment_id for i in intents.stale_open_intents(session, cutoff))
        appointment_ids.update(operations.drifted_appointment_ids(session, cutoff))
        due = [(i, key) for i, key in outbox.due_messages(session, cutoff) if wanted(key)]
        receipt_ids = operations.pending_receipt_ids(session, cutoff) if enqueue_zoom_webhook else []
    synced = sorted(a for a in appointment_ids if wanted(a))
    for event_id in event_ids:
        enqueue_event(event_id)
    for appointment_id in synced:
        enqueue_sync(appointment_id)
    for outbox_id, appointment_id in due:
        enqueue_notification(outbox_id, clinic=clinic_of(appointment_id))
    for receipt_id in receipt_ids:
        assert enqueue_zoom_webhook is not None
        enqueue_zoom_webhook(receipt_id)
    return ReconcileReport(len(event_ids), len(synced), len(due), len(receipt_ids))
