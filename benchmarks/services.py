"""Redis and the database a benchmark run uses: real ones when configured, else embedded.

``TELEMED_BENCH_REDIS_URL`` and ``TELEMED_BENCH_DATABASE_URL`` point the run at a real
Redis and PostgreSQL server (each benchmark gets a fresh database there, dropped at the
end, and a Redis namespace of its own, deleted at the end). Without them the run uses
the embedded Redis-protocol server in a process of its own and SQLite files, and the
report says so: those numbers describe the embedded setup, not production.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import redis
import sqlalchemy
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from telemed.benchmarks.procs import Proc, wait_until
from telemed.store.db import normalise_url
from telemed.store.migrate import upgrade

REDIS_ENV = "TELEMED_BENCH_REDIS_URL"
DATABASE_ENV = "TELEMED_BENCH_DATABASE_URL"


@dataclass
class Services:
    workdir: Path
    redis_url: str = ""
    database_server_url: str | None = None
    real_redis: bool = False
    secret_key: str = field(default_factory=lambda: Fernet.generate_key().decode())
    _embedded: Proc | None = None
    _databases: list[str] = field(default_factory=list)
    _namespaces: list[str] = field(default_factory=list)

    @classmethod
    def from_environment(cls, workdir: Path) -> Services:
        services = cls(workdir=workdir, database_server_url=os.environ.get(DATABASE_ENV) or None)
        real = os.environ.get(REDIS_ENV)
        if real:
            services.redis_url, services.real_redis = real, True
            redis.Redis.from_url(real, socket_connect_timeout=3).ping()
        else:
            services._start_embedded_redis()
        if services.database_server_url:
            with sqlalchemy.create_engine(normalise_url(services.database_server_url)).connect() as conn:
                conn.exec_driver_sql("select 1")
        return services

    def _start_embedded_redis(self) -> None:
        log = self.workdir / "logs" / "embedded-redis.log"
        self._embedded = Proc.start("embedded Redis", [sys.executable, "-m", "telemed.benchmarks.embedded_redis"],
                                    env=python_env(), cwd=self.workdir, log_path=log)
        wait_until(lambda: "redis://" in self._embedded.log_tail(), timeout=30,  # type: ignore[union-attr]
                   what="the embedded Redis server", watch=[self._embedded])
        self.redis_url = self._embedded.log_tail().strip().splitlines()[-1].strip()

    @property
    def embedded_redis_proc(self) -> Proc | None:
        return self._embedded

    @property
    def real_database(self) -> bool:
        return self.database_server_url is not None

    @property
    def kind(self) -> str:
        if self.real_redis and self.real_database:
            return "real Redis + PostgreSQL"
        parts = ["real Redis" if self.real_redis else "embedded Redis-protocol server (fakeredis)",
                 "PostgreSQL" if self.real_database else "SQLite"]
        return " + ".join(parts)

    def namespace(self, name: str) -> str:
        namespace = f"bench-{name}-{uuid.uuid4().hex[:6]}"
        self._namespaces.append(namespace)
        return namespace

    def fresh_database(self, name: str) -> str:
        """A new migrated database: a PostgreSQL database on the server, or a SQLite file."""
        if not self.database_server_url:
            path = self.workdir / f"{name}-{uuid.uuid4().hex[:6]}.db"
            url = f"sqlite:///{path}"
        else:
            base = make_url(normalise_url(self.database_server_url))
            database = f"telemed_bench_{name.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
            self._admin(f'CREATE DATABASE "{database}"')
            self._databases.append(database)
            url = base.set(database=database).render_as_string(hide_password=False)
        upgrade(url)
        return url

    def _admin(self, sql: str) -> None:
        assert self.database_server_url
        engine = sqlalchemy.create_engine(normalise_url(self.database_server_url), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(sql)
        finally:
            engine.dispose()

    def versions(self) -> dict[str, str]:
        """What the report names as the Redis and database under test."""
        if self.real_redis:
            info = redis.Redis.from_url(self.redis_url).info("server")
            redis_version = f"Redis {info.get('redis_version', '?')}"
        else:
            import fakeredis

            redis_version = f"embedded fakeredis {getattr(fakeredis, '__version__', '?')} (no INFO)"
        if self.database_server_url:
            engine = sqlalchemy.create_engine(normalise_url(self.database_server_url))
            try:
                with engine.connect() as conn:
                    version = conn.exec_driver_sql("show server_version").scalar()
            finally:
                engine.dispose()
            database_version = f"PostgreSQL {version}"
        else:
            database_version = f"SQLite {sqlite3.sqlite_version}"
        return {"redis": redis_version, "database": database_version}

    def close(self) -> None:
        client = redis.Redis.from_url(self.redis_url) if self.redis_url else None
        for namespace in self._namespaces:
            if client is None:
                break
            try:
                for key in client.scan_iter(match=f"{namespace}:*", count=1000):
                    client.delete(key)
            except redis.RedisError:
                pass
        if client is not None:
            client.close()
        for database in self._databases:
            with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError):
                self._admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        if self._embedded is not None:
            self._embedded.stop()


def python_env(**extra: str) -> dict[str, str]:
    """The environment for child Python processes: ours without TELEMED_* settings."""
    repo = str(Path(__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMED_")}
    env["PYTHONPATH"] = repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env
