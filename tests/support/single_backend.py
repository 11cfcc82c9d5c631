"""One pipeline on the most real backend available, for slow process-level tests.

The ``pipeline`` fixture runs a test on every backend; tests whose subject is a process
or a page (the scheduler lock, the Procfile, the admin browser, the dlq command) gain
little from running twice and cost seconds each. These run once: on real Redis and
PostgreSQL when configured (as in CI), else on the embedded server and SQLite.
``tests/conftest.py`` registers the fixture.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tests.support.databases import fresh_database
from tests.support.pipeline import Pipeline

REAL_REDIS_URL = os.environ.get("TELEMED_TEST_REDIS_URL")
REAL_DATABASE_URL = os.environ.get("TELEMED_TEST_DATABASE_URL")


@contextmanager
def most_real_backend(embedded_redis, tmp_path: Path) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(redis_url, fresh database_url): real Redis and PostgreSQL if configured, else embedded + SQLite."""
    real = bool(REAL_REDIS_URL and REAL_DATABASE_URL)
    redis_url = REAL_REDIS_URL if real else embedded_redis.url
    assert redis_url is not None
    with fresh_database("postgresql" if real else "sqlite", tmp_path, REAL_DATABASE_URL) as database_url:
        yield redis_url, database_url


@pytest.fixture
def single_pipeline(embedded_redis, zoom_sim, smtp, tmp_path, redis_namespace) -> Iterator[Pipeline]:  # type: ignore[no-untyped-def]
    with most_real_backend(embedded_redis, tmp_path) as (redis_url, database_url):
        p = Pipeline(
            redis_url=redis_url, namespace=redis_namespace, database_url=database_url,
            zoom_api_url=zoom_sim.api_url, zoom_oauth_url=zoom_sim.oauth_url,
            zoom_credentials={"account_id": "test-account", "client_id": "test-client",
                              "client_secret": "test-secret"},
            smtp_url=smtp.url(), workdir=tmp_path,
        )
        p.start_worker()
        try:
            yield p
        finally:
            p.stop()
            client = redis.Redis.from_url(redis_url)
            for key in client.scan_iter(match=f"{redis_namespace}*", count=500):
                client.delete(key)
            client.close()
