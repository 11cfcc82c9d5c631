"""Cluster-wide gauges: queue depth, dead letters and outbox pending.

They describe the whole installation, not one process, so one scheduler job measures them
(``workers.jobs.gauges_job``) and keeps the snapshot in Redis; every ``/metrics`` answer
loads the newest snapshot into its gauges. So Prometheus reads them from the web process,
whichever host the active scheduler runs on, and never sums copies from several processes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import redis
from prometheus_client import Gauge

from telemed.foundation.dead_letters import count_by_queue

OUTBOX_PENDING = Gauge("telemed_outbox_pending", "Outbox rows waiting to be sent")

QUEUE_DEPTH = Gauge("telemed_queue_depth", "Messages waiting per queue", ["queue"])

DEAD_LETTERS = Gauge("telemed_dead_letters", "Messages in the dead-letter sets", ["queue"])

GATE_WAITING = Gauge("telemed_gate_waiting", "Messages waiting at the clinic gate (every clinic's backlog)")

GATE_BACKLOGGED = Gauge("telemed_gate_backlogged_clinics", "Clinics with messages waiting at the clinic gate")

# When the scheduler last measured the gauges above (unix seconds; 0: never).
GAUGES_UPDATED = Gauge("telemed_gauges_updated_timestamp_seconds", "When queue and outbox gauges were measured")

SNAPSHOT_TTL_S = 600  # a snapshot older than this is dropped: no scheduler, no numbers


def _key(namespace: str) -> str:
    return f"{namespace}:metrics:gauges"


def measure(client: redis.Redis, namespace: str, queues: Iterable[str], outbox_pending: int) -> dict[str, float]:
    """Messages not yet done per queue (waiting, delayed or in flight), dead letters, outbox."""
    values: dict[str, float] = {"outbox_pending": float(outbox_pending), "updated_at": time.time()}
    for queue in queues:
        depth = client.hlen(f"{namespace}:{queue}.msgs") + client.hlen(f"{namespace}:{queue}.DQ.msgs")
        values[f"queue_depth|{queue}"] = float(depth)
    for queue, count in count_by_queue(client, namespace, queues).items():
        values[f"dead_letters|{queue}"] = float(count)
    return values


def store_snapshot(client: redis.Redis, namespace: str, values: Mapping[str, float]) -> None:
    pipe = client.pipeline()
    pipe.delete(_key(namespace))
    pipe.hset(_key(namespace), mapping={k: repr(float(v)) for k, v in values.items()})
    pipe.expire(_key(namespace), SNAPSHOT_TTL_S)
    pipe.execute()


def load_snapshot(client: redis.Redis, namespace: str) -> dict[str, float]:
    raw: dict[bytes, bytes] = client.hgetall(_key(namespace))  # type: ignore[assignment]
    return {k.decode(): float(v) for k, v in raw.items()}


def apply(values: Mapping[str, float]) -> None:
    """Set this process's gauges from a snapshot."""
    for name, value in values.items():
        kind, _, queue = name.partition("|")
        if kind == "queue_depth":
            QUEUE_DEPTH.labels(queue=queue).set(value)
        elif kind == "dead_letters":
            DEAD_LETTERS.labels(queue=queue).set(value)
        elif kind == "outbox_pending":
            OUTBOX_PENDING.set(value)
        elif kind == "gate_waiting":
            GATE_WAITING.set(value)
        elif kind == "gate_backlogged":
            GATE_BACKLOGGED.set(value)
        elif kind == "updated_at":
            GAUGES_UPDATED.set(value)
