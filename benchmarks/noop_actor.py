"""Raw Dramatiq, for the broker-efficiency baseline: a no-op actor on a stock RedisBroker.

Run as ``python -m dramatiq benchmarks.noop_actor --processes P --threads T`` with
``TELEMED_REDIS_URL`` / ``TELEMED_REDIS_NAMESPACE`` naming the same Redis and namespace
as the pipeline run. Nothing of telemed is imported: this is what Dramatiq does alone.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

QUEUE = "bench-noop"

broker = RedisBroker(url=os.environ["TELEMED_REDIS_URL"], namespace=os.environ["TELEMED_REDIS_NAMESPACE"])
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def noop(n: int) -> None:
    return None
