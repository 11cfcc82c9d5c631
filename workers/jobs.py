"""The scheduler's jobs: (name, interval in seconds or None for the default, function).

Each function takes the worker context and returns counts to log. Jobs queue work
through the actors; they never call Zoom or send mail themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workers.context import WorkerContext


def reconcile_job(ctx: WorkerContext) -> dict[str, int]:
    from workers import actors
    from workers.reconciler import reconcile

    report = reconcile(
        ctx.database,
        enqueue_event=actors.process_event.send,
        enqueue_sync=actors.sync_meeting.send,
        enqueue_notification=actors.deliver_notification.send,
    )
    return {"events": report.events, "appointments": report.appointments, "notifications": report.notifications}


JOBS: list[tuple[str, float | None, Callable[[Any], dict[str, int]]]] = [
    ("reconcile", None, reconcile_job),
]
