"""Engines and units of work: the only place that opens database connections."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, SQLModel, create_engine

from telemed.foundation.cipher import Cipher
from telemed.store.types import CIPHER_ATTRIBUTE

RowT = TypeVar("RowT", bound=SQLModel)


def normalise_url(url: str) -> str:
    """Accept the usual spellings and pick the psycopg 3 driver for PostgreSQL."""
    parsed = make_url(url)
    if parsed.drivername in {"postgres", "postgresql"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_db_engine(url: str, *, pre_ping: bool = True, pool_size: int = 5, **kwargs: Any) -> Engine:
    """An engine for ``url``. ``pre_ping`` tests each pooled connection before use (one
    round trip per transaction); workers turn it off because a connection that died with
    the server fails its first statement with ``OperationalError``, which the retry policy
    treats as transient, and SQLAlchemy then renews the whole pool."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        _tune_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=pre_ping, pool_size=pool_size, max_overflow=10, **kwargs)


def _tune_sqlite(engine: Engine) -> None:
    # Several worker processes share the file: WAL lets readers run beside the writer,
    # and BEGIN IMMEDIATE takes the write lock up front, because SQLite does not wait
    # (busy_timeout) when a reader tries to upgrade to a writer mid-transaction.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """An engine plus the one way to use it: ``with db.session() as s: ...``."""

    def __init__(self, url: str, *, cipher: Cipher | None = None, pre_ping: bool = True, pool_size: int = 5,
                 **engine_kwargs: Any) -> None:
        self.url = normalise_url(url)
        self.engine = create_db_engine(self.url, pre_ping=pre_ping, pool_size=pool_size, **engine_kwargs)
        # Encrypted columns find it here (store.types); without one they refuse to work.
        setattr(self.engine.dialect, CIPHER_ATTRIBUTE, cipher)
        self.cipher = cipher

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits when the block ends, rolls back if it raises."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def ping(self) -> None:
        """Raise unless the database answers a trivial query (for readiness checks)."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def server_time(self) -> float | None:
        """The database server's clock (Unix seconds), or None for SQLite (this host's clock)."""
        if self.engine.dialect.name == "sqlite":
            return None
        with self.engine.connect() as connection:
            return float(connection.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one())

    def dispose(self) -> None:
        self.engine.dispose()


def insert_unless_exists(session: Session, row: RowT, key: Sequence[str]) -> RowT | None:
    """``INSERT ... ON CONFLICT (key) DO NOTHING RETURNING`` the primary key: ``row`` (now
    persistent, with its generated key) when it is new, None when ``key`` is taken.

    One statement instead of a lookup, a savepoint and an insert, and still race-free:
    two workers inserting the same key concurrently get one row and one None.
    """
    table = type(row).__table__  # type: ignore[attr-defined]
    values = {c.name: getattr(row, c.name) for c in table.columns if getattr(row, c.name) is not None}
    statement = _conflict_free_insert(session.get_bind().dialect.name, table, tuple(key))
    created = session.execute(statement, values).first()
    if created is None:
        return None
    for column, value in zip(table.primary_key.columns, created, strict=True):
        setattr(row, column.name, value)
    # Known to the session as the stored row it now is, without reading it back.
    make_transient_to_detached(row)
    session.add(row)
    return row


@functools.lru_cache(maxsize=64)
def _conflict_free_insert(backend: str, table: Any, key: tuple[str, ...]) -> Any:
    """Built once per table: the values come as parameters at execution."""
    if backend == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif backend == "sqlite":
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    else:  # pragma: no cover - the two supported backends
        raise NotImplementedError(f"no conflict-free insert for {backend}")
    return insert(table).on_conflict_do_nothing(index_elements=list(key)).returning(*table.primary_key.columns)
