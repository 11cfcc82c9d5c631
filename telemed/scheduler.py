"""``telemed scheduler``: periodic jobs, one active instance at a time (a Redis lock)."""

from __future__ import annotations

import signal
import threading
from datetime import timedelta

import structlog

from telemed.runtime import build_database
from telemed.settings import get_settings

log = structlog.get_logger("telemed.scheduler")


def run_scheduler(interval: float, once: bool = False, grace: timedelta = timedelta(seconds=30)) -> int:
    from workers import actors
    from workers.reconciler import reconcile

    settings = get_settings()
    database = build_database(settings)
    client = actors.broker.client
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    lock = client.lock(f"{settings.redis_namespace}:lock:scheduler", timeout=max(30.0, interval * 3))
    while not stop.is_set():
        if lock.acquire(blocking=False) or _still_ours(lock):
            report = reconcile(
                database,
                enqueue_event=lambda i: actors.process_event.send(i),
                enqueue_sync=lambda i: actors.sync_meeting.send(i),
                enqueue_notification=lambda i: actors.deliver_notification.send(i),
                grace=grace,
            )
            log.info("reconciled", count=report.total, events=report.events,
                     appointments=report.appointments, notifications=report.notifications)
        if once:
            break
        stop.wait(interval)
    try:
        lock.release()
    except Exception:
        pass
    return 0


def _still_ours(lock) -> bool:  # type: ignore[no-untyped-def]
    try:
        return bool(lock.owned() and lock.reacquire())
    except Exception:
        return False
