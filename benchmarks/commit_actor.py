"""The broker-efficiency reference: Dramatiq plus the least durable work a message can do.

Run as ``python -m dramatiq benchmarks.commit_actor --processes P --threads T`` with
``TELEMED_REDIS_URL`` / ``TELEMED_REDIS_NAMESPACE`` and ``TELEMED_DATABASE_URL`` naming the
pipeline run's Redis, namespace and database. Each message inserts one row and commits,
through SQLAlchemy's ORM session as the store does, so the gap between this and the no-op
is what durability alone costs before any of telemed's own work.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

QUEUE = "bench-commit"  # table bench_commits (n INTEGER) is created by the benchmark before the run

broker = RedisBroker(url=os.environ["TELEMED_REDIS_URL"], namespace=os.environ["TELEMED_REDIS_NAMESPACE"])
dramatiq.set_broker(broker)
_url = os.environ["TELEMED_DATABASE_URL"]  # already normalised by the benchmark (postgresql+psycopg or sqlite)
_engine = create_engine(_url, pool_size=16, connect_args={"timeout": 30} if _url.startswith("sqlite") else {})
_INSERT = text("INSERT INTO bench_commits (n) VALUES (:n)")


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def commit(n: int) -> None:
    with Session(_engine) as session:
        session.execute(_INSERT, {"n": n})
        session.commit()
