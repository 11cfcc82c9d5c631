"""Shared fixtures: real services when configured, embedded ones otherwise.

``TELEMED_TEST_REDIS_URL`` and ``TELEMED_TEST_DATABASE_URL`` point the suite at real
Redis and PostgreSQL (CI sets both, with ``TELEMED_TEST_REQUIRE_SERVICES=1`` so a missing
service fails the run instead of skipping). Without them the suite uses the embedded
Redis-protocol server and SQLite.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.support.leaks import leftovers
from tests.support.services import EmbeddedRedis, require_services

REAL_REDIS_URL = os.environ.get("TELEMED_TEST_REDIS_URL")
REAL_DATABASE_URL = os.environ.get("TELEMED_TEST_DATABASE_URL")


def pytest_configure(config: pytest.Config) -> None:
    leftovers.register(config, REAL_REDIS_URL)


def pytest_sessionstart(session: pytest.Session) -> None:
    require_services(REAL_REDIS_URL, REAL_DATABASE_URL)


@pytest.fixture(scope="session")
def embedded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis.start()
    yield server
    leftovers.record_embedded_redis(server.url, tmp_path_factory.getbasetemp())  # for the session's scan
    server.stop()


@pytest.fixture(scope="session")
def redis_url(embedded_redis: EmbeddedRedis) -> str:
    """The Redis the suite runs on: the real one when configured, else embedded."""
    return REAL_REDIS_URL or embedded_redis.url


@pytest.fixture
def redis_namespace() -> str:
    """A namespace of our own per test, so tests never see each other's keys."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def redis_client(redis_url: str, redis_namespace: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    for key in client.scan_iter(match=f"{redis_namespace}*", count=500):
        client.delete(key)
    client.close()


def _database_kinds() -> list[str]:
    return ["sqlite", "postgresql"] if REAL_DATABASE_URL else ["sqlite"]


@pytest.fixture(params=_database_kinds())
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh migrated database: SQLite always, PostgreSQL too when configured."""
    from tests.support.databases import fresh_database

    with fresh_database(request.param, tmp_path, REAL_DATABASE_URL) as url:
        yield url


@pytest.fixture
def database(database_url: str):  # type: ignore[no-untyped-def]
    from cryptography.fernet import Fernet

    from telemed.foundation.cipher import Cipher
    from telemed.store.db import Database

    db = Database(database_url, cipher=Cipher([Fernet.generate_key().decode()]))
    yield db
    db.dispose()


def _backends() -> list[str]:
    return ["real", "embedded"] if (REAL_REDIS_URL and REAL_DATABASE_URL) else ["embedded"]


@pytest.fixture(params=_backends())
def backend(request: pytest.FixtureRequest, tmp_path, embedded_redis: EmbeddedRedis):  # type: ignore[no-untyped-def]
    """(redis_url, database_url): real Redis + PostgreSQL, or embedded server + SQLite."""
    from tests.support.databases import fresh_database

    if request.param == "real":
        with fresh_database("postgresql", tmp_path, REAL_DATABASE_URL) as url:
            yield REAL_REDIS_URL, url
    else:
        with fresh_database("sqlite", tmp_path, None) as url:
            yield embedded_redis.url, url


@pytest.fixture
def zoom_sim():  # type: ignore[no-untyped-def]
    from telemed.zoom.simulator import ZoomSimulator

    with ZoomSimulator(client_id="test-client", client_secret="test-secret", account_id="test-account") as sim:
        yield sim


@pytest.fixture
def smtp():  # type: ignore[no-untyped-def]
    from tests.support.smtp import smtp_server

    with smtp_server() as server:
        yield server


@pytest.fixture
def pipeline(backend, zoom_sim, smtp, tmp_path, redis_namespace):  # type: ignore[no-untyped-def]
    """A running pipeline: one real worker process, simulator over HTTP, real SMTP."""
    from tests.support.pipeline import Pipeline

    redis_url, database_url = backend
    p = Pipeline(
        redis_url=redis_url, namespace=redis_namespace, database_url=database_url,
        zoom_api_url=zoom_sim.api_url, zoom_oauth_url=zoom_sim.oauth_url,
        zoom_credentials={"account_id": "test-account", "client_id": "test-client", "client_secret": "test-secret"},
        smtp_url=smtp.url(), workdir=tmp_path,
    )
    p.start_worker()
    yield p
    p.stop()
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{redis_namespace}*", count=500):
        client.delete(key)
    client.close()


# One pipeline on the most real backend configured, for slow process-level tests.
from tests.support.single_backend import single_pipeline  # noqa: E402,F401
