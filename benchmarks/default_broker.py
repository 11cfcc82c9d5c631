"""The pipeline's actors on Dramatiq's *default* Redis broker settings, for the recovery
baseline: heartbeat timeout 60 s, maintenance on 0.1 % of commands, and no heartbeat
thread of ours. Run as ``python -m dramatiq benchmarks.default_broker ...``.

``workers.actors`` keeps a broker that is already installed, so setting one here first is
all it takes; everything else (settings, logging, actors) is the product's own.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(url=os.environ["TELEMED_REDIS_URL"], namespace=os.environ["TELEMED_REDIS_NAMESPACE"])
dramatiq.set_broker(broker)

import telemed.worker_entry  # noqa: E402,F401  (logging, then the actors on this broker)
