"""The scheduler's jobs: (name, interval in seconds or None for the default, function).

Each function takes the worker context and returns counts to log. Jobs queue work
through the actors; they never send mail themselves, and the only Zoom calls they make
are the token refresher's and the orphan sweep's (a handful per pass).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from telemed.foundation import queue_gauges as gauges
from telemed.store.operations import count_outbox_pending
from telemed.workers.context import WorkerContext
from telemed.workers.delivery.reminders import reminders_job
from telemed.workers.hosting.token_refresher import refresh_tokens_job
from telemed.workers.meetings.app_failures import resume_fixed_apps_job
from telemed.workers.meetings.orphans import sweep_orphans_job
from telemed.workers.queue.clinic_gate import gate_of
from telemed.workers.queue.work_queue import QUEUES
from telemed.workers.reconciler import reconcile


def reconcile_job(ctx: WorkerContext) -> dict[str, int]:
    gate = gate_of(ctx.queue.broker)
    # First the gate's own upkeep (slots whose lease ran out, waiting messages moved on),
    # then the store's: clinics still waiting at the gate have a backlog, not lost work.
    promoted = gate.pump() if gate is not None else 0
    backlogged = gate.backlogged() if gate is not None else set()
    report = reconcile(
        ctx.database,
        enqueue_event=ctx.queue.process_event,
        enqueue_sync=ctx.queue.sync_meeting,
        enqueue_notification=ctx.queue.deliver_notification,
        enqueue_zoom_webhook=ctx.queue.process_zoom_webhook,
        grace=timedelta(seconds=ctx.settings.reconcile_grace_seconds),
        skip_clinics=backlogged,
    )
    return {"events": report.events, "appointments": report.appointments, "notifications": report.notifications,
            "zoom_webhooks": report.webhooks, "gate_promoted": promoted, "backlogged_clinics": len(backlogged)}


def gauges_job(ctx: WorkerContext) -> dict[str, int]:
    """Measure queue depth, dead letters and outbox pending into Redis for every /metrics."""
    with ctx.database.session() as session:
        pending = count_outbox_pending(session)
    values = gauges.measure(ctx.redis, ctx.settings.redis_namespace, QUEUES, pending)
    gate = gate_of(ctx.queue.broker)
    if gate is not None:  # the clinics' backlogs, summed: a clinic id is no metric label
        backlogged = gate.backlogged()
        values["gate_backlogged"] = float(len(backlogged))
        values["gate_waiting"] = float(sum(sum(gate.waiting(c).values()) for c in backlogged))
    gauges.store_snapshot(ctx.redis, ctx.settings.redis_namespace, values)
    gauges.apply(values)
    return {}  # nothing to log every pass


JOBS: list[tuple[str, float | None, Callable[[Any], dict[str, int]]]] = [
    ("reconcile", None, reconcile_job),
    ("reminders", None, reminders_job),
    ("gauges", None, gauges_job),
    ("zoom_tokens", None, refresh_tokens_job),
    ("zoom_orphans", 600.0, sweep_orphans_job),
    # A clinic whose Zoom app was missing or refused: resume its appointments once fixed.
    ("zoom_apps", 60.0, resume_fixed_apps_job),
]
