"""The Dramatiq broker: Redis, our middleware, and recovery tuned for seconds, not minutes.

Built by ``telemed.bootstrap`` from a Redis URL; the actors are declared on it afterwards
(``workers.actors.declare_actors``). Recovery tuning: a killed worker's messages come back only
after its heartbeat is older than ``heartbeat_timeout`` *and* a maintenance run hits
that queue. Dramatiq's defaults (60 s, 0.1 % of commands) measured about ten minutes.

We use a 5 s timeout and a thread per process (``HeartbeatMiddleware``) that, every
second, heartbeats and runs maintenance on each queue. So a dead worker's messages are
back within about 6 s, instead of waiting for a random maintenance hit. The thread also
keeps the timeout safe: Dramatiq otherwise heartbeats only as a side effect of fetching
and acking, which stops while every worker thread waits on a slow Zoom call, and a stall
that long would hand live messages to another worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from telemed.workers.queue.clinic_gate import ClinicGate
from telemed.workers.queue.gated_broker import GatedRedisBroker
from telemed.workers.queue.log_context import install_log_context
from telemed.workers.queue.metrics_middleware import MetricsMiddleware
from telemed.workers.queue.poison import ArgumentCheck
from telemed.workers.queue.work_queue import PROMOTION_ORDER, QUEUES

HEARTBEAT_TIMEOUT_MS = 5_000
HEARTBEAT_INTERVAL_S = 1.0
MAINTENANCE_CHANCE = MAINTENANCE_SCALE // 100  # 1 % of commands (the heartbeat thread does the rest)


def maintainer(broker: RedisBroker) -> RedisBroker:
    """A second handle on ``broker``'s Redis, under its worker id, whose every command also
    runs maintenance: requeue dead workers' messages now.

    Dramatiq decides maintenance by chance on each command (``maintenance_chance`` out of
    ``MAINTENANCE_SCALE``); this handle's chance is certainty, set through the broker's
    constructor, so its commands and their arguments stay Dramatiq's own.
    """
    handle = RedisBroker(
        client=broker.client, namespace=broker.namespace, heartbeat_timeout=broker.heartbeat_timeout,
        dead_message_ttl=broker.dead_message_ttl, maintenance_chance=MAINTENANCE_SCALE, middleware=[],
    )
    handle.broker_id = broker.broker_id  # this process's heartbeat, not a new worker's
    return handle


def beat(handle: RedisBroker, queue_name: str) -> None:
    """Heartbeat plus maintenance on one queue (``handle`` from :func:`maintainer`)."""
    handle.do_qsize(queue_name)


class HeartbeatMiddleware(dramatiq.Middleware):
    """Keeps this process's heartbeat fresh and hands dead workers' messages back quickly.

    Each tick is one cheap dispatch per declared queue (delay queues included).
    """

    def __init__(self, interval: float = HEARTBEAT_INTERVAL_S) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, args=(broker,), name="heartbeat", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.set()

    def _beat(self, broker: dramatiq.Broker) -> None:
        if not isinstance(broker, RedisBroker):
            return  # no heartbeats to keep
        handle = maintainer(broker)
        while not self._stop.wait(self.interval):
            queues = {*broker.get_declared_queues(), *broker.get_declared_delay_queues()} or set(QUEUES)
            for queue in sorted(queues):
                try:
                    beat(handle, queue)
                except Exception:  # noqa: BLE001 - a Redis blip: the next tick tries again
                    break


class WorkerThreads(dramatiq.Middleware):
    """Tells ``on_boot`` how many threads this worker process runs, before any message.

    The worker context sizes its database pool by it (one pooled connection per thread).
    """

    def __init__(self, on_boot: Callable[[int], None]) -> None:
        self._on_boot = on_boot

    def before_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._on_boot(int(worker.worker_threads))

# For an actor declared without its own limit (workers/policy/retries.py gives every one of
# ours its own).
DEFAULT_MAX_RETRIES = 10


def build_broker(client: redis.Redis, namespace: str, *, metrics_forks: list[Any] | None = None,
                 clinic_in_flight: int = 0, clinic_lease_seconds: float = 600.0) -> RedisBroker:
    """The broker on Redis through ``client`` (which may follow a Sentinel failover);
    ``metrics_forks``: Dramatiq fork processes for the
    workers' metrics port (``telemed.worker``), if it is served; ``clinic_in_flight``: the
    clinic gate's limit (``workers.queue.clinic_gate``; 0: no gate), its slots' lease."""
    middleware = [
        AgeLimit(),
        TimeLimit(time_limit=5 * 60_000),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        # The backoff of every retried actor; each actor's limit is its own
        # (workers/policy/retries.py decides when to give up, and declares these limits).
        Retries(max_retries=DEFAULT_MAX_RETRIES, min_backoff=1_000, max_backoff=5 * 60_000),
        CurrentMessage(),  # the actors read their message's try count (workers/actors.py)
    ]
    gate = ClinicGate(client, namespace, clinic_in_flight, int(clinic_lease_seconds * 1000),
                      PROMOTION_ORDER) if clinic_in_flight > 0 else None
    broker = GatedRedisBroker(  # dead-letters undecodable bodies (workers/queue/poison.py), gates clinics
        gate=gate,
        client=client,
        namespace=namespace,
        heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
        maintenance_chance=MAINTENANCE_CHANCE,
        middleware=middleware,
    )
    broker.add_middleware(HeartbeatMiddleware())
    install_log_context(broker)  # first, so Retries' own lines still carry message_id
    broker.add_middleware(MetricsMiddleware(forks=metrics_forks or []))  # per-actor outcomes, dead-letter reasons
    broker.add_middleware(ArgumentCheck())  # wrong arguments: dead letters at once, with the reason
    return broker
