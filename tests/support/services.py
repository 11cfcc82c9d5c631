"""Starting and checking the services the integration tests run on."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
import redis
import sqlalchemy

from telemed.workers.queue.embedded_redis import EmbeddedRedisServer


@dataclass
class EmbeddedRedis:
    server: EmbeddedRedisServer

    @classmethod
    def start(cls) -> EmbeddedRedis:
        return cls(EmbeddedRedisServer.start(port=_free_port()))

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_services(redis_url: str | None, database_url: str | None) -> None:
    """In CI a configured service that does not answer fails the run, never skips."""
    if os.environ.get("TELEMED_TEST_REQUIRE_SERVICES") != "1":
        return
    problems = []
    if not redis_url:
        problems.append("TELEMED_TEST_REDIS_URL is not set")
    else:
        try:
            redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
        except redis.RedisError as exc:
            problems.append(f"Redis at {urlsplit(redis_url).netloc} does not answer: {exc}")
    if not database_url:
        problems.append("TELEMED_TEST_DATABASE_URL is not set")
    else:
        try:
            with sqlalchemy.create_engine(database_url).connect() as conn:
                conn.execute(sqlalchemy.text("select 1"))
        except sqlalchemy.exc.SQLAlchemyError as exc:
            problems.append(f"database does not answer: {type(exc).__name__}")
    if problems:
        pytest.exit("required test services missing:\n  " + "\n  ".join(problems), returncode=3)
