"""Worker metrics: per-actor outcomes and durations, exported for Prometheus.

Dramatiq runs several worker processes, and each counts in its own memory. With
TELEMED_WORKER_METRICS_PORT set, ``telemed worker`` points prometheus_client's
multiprocess mode at a fresh directory before the processes start
(:func:`prepare_multiprocess`), and Dramatiq forks one extra process that serves the sum
of all of them on TELEMED_METRICS_BIND (loopback by default: DESIGN says never 0.0.0.0
by accident) and that port (:func:`serve_worker_metrics`).

The middleware also keeps each dead letter's reason: Dramatiq stores the message as it
was enqueued, so a message failed by ``PermanentFailure`` on its first try would carry no
reason at all. After the nack we write the final exception into the dead copy's options.
"""

from __future__ import annotations

import os
import time
import traceback
from datetime import datetime
from typing import Any

import dramatiq
import structlog
from dramatiq.broker import Broker, MessageProxy

from telemed.foundation.redaction import scrub_text
from telemed.store.models import utcnow
from telemed.workers import metrics
from telemed.workers.queue.metrics_dir import MULTIPROC_ENV

log = structlog.get_logger("telemed.workers.metrics")


class MetricsMiddleware(dramatiq.Middleware):
    def __init__(self, forks: list[Any] | None = None) -> None:
        self._forks = list(forks or [])
        self._started: dict[str, float] = {}

    @property
    def forks(self) -> list[Any]:
        return self._forks

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        self._started[message.message_id] = time.monotonic()

    def after_process_message(self, broker: Broker, message: MessageProxy, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        started = self._started.pop(message.message_id, None)
        if started is not None:
            metrics.MESSAGE_SECONDS.labels(actor=message.actor_name).observe(time.monotonic() - started)
        metrics.MESSAGES.labels(actor=message.actor_name,
                                outcome="succeeded" if exception is None else "failed").inc()
        if exception is not None:
            message.options["failure"] = scrub_text(f"{type(exception).__name__}: {exception}")[:500]
            message.options["traceback"] = scrub_text(
                "".join(traceback.format_exception(exception, limit=30)))[-8000:]

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        self._started.pop(message.message_id, None)
        metrics.MESSAGES.labels(actor=message.actor_name, outcome="skipped").inc()

    def after_nack(self, broker: Broker, message: MessageProxy) -> None:
        metrics.MESSAGES.labels(actor=message.actor_name, outcome="dead_lettered").inc()
        _keep_reason(broker, message)


def _keep_reason(broker: Broker, message: MessageProxy) -> None:
    """Rewrite the dead copy with the final failure in its options (best effort)."""
    client = getattr(broker, "client", None)
    namespace = getattr(broker, "namespace", None)
    if client is None or namespace is None:
        return
    queue = message.queue_name.removesuffix(".DQ")
    key = f"{namespace}:{queue}.XQ.msgs"
    redis_id = message.options.get("redis_message_id", message.message_id)
    try:
        if client.hexists(key, redis_id):
            options = {k: v for k, v in message.options.items() if k != "redis_message_id"}
            client.hset(key, redis_id, message.copy(options=options).encode())
    except Exception as exc:  # noqa: BLE001  (the dead letter is there anyway, only without its reason)
        log.warning("could not record the dead letter's reason", error_type=type(exc).__name__)


def serve_worker_metrics(port: int, bind: str) -> None:
    """Serve the workers' summed metrics until the worker command stops (a Dramatiq fork)."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=os.environ.get(MULTIPROC_ENV))
    server, thread = start_http_server(port, addr=bind, registry=registry)
    log.info("worker metrics served", port=port)
    try:
        thread.join()
    finally:
        server.shutdown()


EVENT_DRIVEN_KINDS = frozenset({"invite", "updated", "cancelled", "started", "ended"})


def observe_end_to_end(received_at: datetime) -> None:
    """Delivery calls this once a notice is sent: seconds since its event was received.

    Only notices an event caused count (not reminders or admin alerts, which are due later
    by design: see ``EVENT_DRIVEN_KINDS``); the clock starts when the inbox received that
    version's first event (``store.outbox.delivery_view`` reads it with the delivery's data).
    """
    metrics.END_TO_END.observe(max(0.0, (utcnow() - received_at).total_seconds()))
