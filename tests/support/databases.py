"""Fresh, migrated databases for tests: a SQLite file, or a new PostgreSQL database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy
from sqlalchemy.engine import make_url

from telemed.store.db import normalise_url
from telemed.store.migrate import upgrade


@contextmanager
def fresh_database(kind: str, tmp_path: Path, server_url: str | None, revision: str = "heads") -> Iterator[str]:
    """A new database migrated to ``revision`` (the head by default)."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'telemed.db'}"
        upgrade(url, revision)
        yield url
        return
    assert server_url, "PostgreSQL tests need TELEMED_TEST_DATABASE_URL"
    base = make_url(normalise_url(server_url))
    name = f"telemed_t_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url, revision)
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
