"""``telemed scheduler``: periodic jobs, one active instance at a time (a Redis lock).

Each job is a plain function ``job(ctx) -> dict[str, int]`` with an interval; the
scheduler runs whichever are due, logs what they report, and keeps going if one fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
import structlog
from redis.exceptions import LockError

from telemed import bootstrap
from telemed.settings import get_settings
from telemed.workers import jobs
from telemed.workers.queue.work_queue import WorkQueue

log = structlog.get_logger("telemed.scheduler")
Job = Callable[[Any], dict[str, int]]


@dataclass
class ScheduledJob:
    name: str
    every_seconds: float
    run: Job
    next_at: float = 0.0


def default_jobs(interval: float) -> list[ScheduledJob]:
    """The jobs, from the modules that own them (the workers package)."""
    return [ScheduledJob(name, every or interval, fn) for name, every, fn in jobs.JOBS]


def run_scheduler(interval: float, once: bool = False, jobs: list[ScheduledJob] | None = None,
                  stop: threading.Event | None = None) -> int:
    """Run due jobs while holding the lock; ``stop`` (or SIGTERM/SIGINT) ends the loop."""
    settings = get_settings()
    ctx = bootstrap.worker_context(settings, WorkQueue(bootstrap.broker(settings)))
    jobs = jobs or default_jobs(interval)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    # A crashed or cut-off active instance is replaced once its lock expires; a stopped one
    # hands over at once (it releases the lock on the way out).
    lock = ctx.redis.lock(f"{settings.redis_namespace}:lock:scheduler",
                          timeout=max(settings.scheduler_lock_seconds, interval * 3))
    active: bool | None = None
    while not stop.is_set():
        holding = _hold(lock)
        if holding != active:
            active = holding
            if holding:
                log.info("scheduler active: this instance holds the lock", pid=os.getpid())
            else:
                log.info("scheduler standby: another instance holds the lock", pid=os.getpid())
        if holding:
            now = time.monotonic()
            for job in jobs:
                if once or now >= job.next_at:
                    job.next_at = now + job.every_seconds
                    _run_one(job, ctx)
        if once:
            break
        stop.wait(min(1.0, interval))
    with contextlib.suppress(redis.RedisError, LockError):  # expired, never ours, or Redis gone
        lock.release()
    return 0


def _hold(lock: Any) -> bool:
    """Take the lock, or extend it if we already hold it; another instance keeps it otherwise."""
    try:
        if lock.owned():
            return bool(lock.reacquire())
        return bool(lock.acquire(blocking=False))
    except (redis.RedisError, LockError) as exc:  # Redis blinked: skip this round
        log.warning("scheduler lock unavailable", error_type=type(exc).__name__)
        return False


def _run_one(job: ScheduledJob, ctx: Any) -> None:
    try:
        report = job.run(ctx)
    except Exception as exc:
        log.exception("scheduled job failed", job=job.name, error_type=type(exc).__name__)
        return
    if any(report.values()):
        log.info("scheduled job ran", job=job.name, **report)
