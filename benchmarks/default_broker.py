"""The pipeline's actors on Dramatiq's *default* Redis broker settings, for the recovery
baseline: heartbeat timeout 60 s, maintenance on 0.1 % of commands, and no heartbeat
thread of ours. Run as ``python -m dramatiq benchmarks.default_broker:broker ...``.

Everything else (settings, logging, actors, the worker context) is the product's own.
"""

from __future__ import annotations

import os

from dramatiq.brokers.redis import RedisBroker

from telemed.bootstrap import Pipeline
from telemed.logging import configure_logging
from telemed.settings import get_settings
from telemed.workers.queue.work_queue import WorkQueue

settings = get_settings()
configure_logging(format=settings.log_format, level=settings.log_level)
broker = RedisBroker(url=os.environ["TELEMED_REDIS_URL"], namespace=os.environ["TELEMED_REDIS_NAMESPACE"])
pipeline = Pipeline(settings, broker, WorkQueue(broker))
