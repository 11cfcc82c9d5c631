"""``telemed keys`` and ``telemed webhook`` against a real database: a key is shown once,
stored hashed, listed without its secret, revoked by prefix; bad input is a clear error."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlmodel import select

from telemed.cli import main
from telemed.settings import reset_settings_cache
from telemed.store import api_keys, notifications
from telemed.store.db import Database

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("TELEMED_DATABASE_URL", database_url)
    monkeypatch.setenv("TELEMED_SECRET_KEYS", Fernet.generate_key().decode())
    monkeypatch.setenv("TELEMED_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TELEMED_WEBHOOK_URL", "https://booking.example/hooks")
    reset_settings_cache()
    yield CliRunner()
    reset_settings_cache()


def test_create_list_revoke(cli: CliRunner, database_url: str) -> None:
    made = cli.invoke(main, ["keys", "create", "--role", "doctor:D-7", "--label", "Dr. Ada's laptop"])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[0]
    prefix = key.split("_")[1]
    assert key.startswith("tmk_") and "shown" in made.stderr

    database = Database(database_url)
    with database.session() as s:
        [row] = s.exec(select(api_keys.ApiKey)).all()
        assert row.role == "doctor:D-7" and row.prefix == prefix
        assert row.key_hash == hashlib.sha256(key.split("_", 2)[2].encode()).hexdigest()
        assert key not in str(row.model_dump())  # only the hash is kept
        assert api_keys.authenticate(s, key) is not None

    listed = cli.invoke(main, ["keys", "list"])
    assert listed.exit_code == 0 and prefix in listed.output and "doctor:D-7" in listed.output
    assert key.split("_", 2)[2] not in listed.output

    revoked = cli.invoke(main, ["keys", "revoke", prefix])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    with database.session() as s:
        assert api_keys.authenticate(s, key) is None
    again = cli.invoke(main, ["keys", "revoke", prefix])
    assert again.exit_code == 1 and "no active key" in again.output
    database.dispose()


def test_a_pasted_whole_key_revokes_by_its_prefix_without_echoing_it(cli: CliRunner) -> None:
    key = cli.invoke(main, ["keys", "create", "--role", "booking"]).stdout.strip().splitlines()[0]
    result = cli.invoke(main, ["keys", "revoke", key])
    assert result.exit_code == 0 and key.split("_", 2)[2] not in result.output


@pytest.mark.parametrize("role", ["root", "doctor:", "doctor:a b", "booking,admin"])
def test_a_bad_role_is_a_clear_error(cli: CliRunner, role: str) -> None:
    result = cli.invoke(main, ["keys", "create", "--role", role])
    assert result.exit_code == 2 and "--role" in result.output and "Traceback" not in result.output


def test_webhook_status_and_enable(cli: CliRunner, database_url: str) -> None:
    assert cli.invoke(main, ["webhook", "status"]).output.strip() == "enabled"
    database = Database(database_url)
    with database.session() as s:
        notifications.disable_webhook(s, "https://booking.example/hooks", "410 Gone")
    status = cli.invoke(main, ["webhook", "status"])
    assert status.exit_code == 1 and "disabled" in status.output
    assert "webhook enabled" in cli.invoke(main, ["webhook", "enable"]).output
    assert cli.invoke(main, ["webhook", "status"]).exit_code == 0
    database.dispose()
