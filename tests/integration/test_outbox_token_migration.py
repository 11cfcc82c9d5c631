"""Migration 0007: outbox rows made before it get a random token each (their Message-IDs
become unique across installations); new rows get one when they are made."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy

from telemed.store.migrate import upgrade

pytestmark = pytest.mark.integration


def test_existing_rows_get_distinct_tokens(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0006")
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        for version in (1, 2, 3):
            conn.exec_driver_sql(
                "INSERT INTO outbox (appointment_id, version, role, kind, channel, status, attempts, created_at,"
                " next_attempt_at) VALUES ('A-1', ?, 'patient', 'invite', 'mail', 'sent', 0,"
                " '2026-01-01 00:00:00', '2026-01-01 00:00:00')", (version,))
    upgrade(url)
    with engine.connect() as conn:
        tokens = [row[0] for row in conn.exec_driver_sql("SELECT token FROM outbox")]
    engine.dispose()
    assert len(tokens) == 3 and len(set(tokens)) == 3 and all(len(t) == 22 for t in tokens)
