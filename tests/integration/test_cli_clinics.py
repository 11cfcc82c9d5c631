"""``telemed clinics`` (and ``keys create --clinic``, ``publish --clinic``) against a real
database: secrets are read from a file, a variable or stdin, never taken from the command
line, stored encrypted and never printed; bad input is one clear line naming the field,
with nothing written."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy
from click.testing import CliRunner, Result
from cryptography.fernet import Fernet

from telemed.cli import main
from telemed.events.publish import Publisher
from telemed.foundation.cipher import Cipher
from telemed.samples import booking
from telemed.settings import reset_settings_cache
from telemed.store import api_keys, clinics, ingress_keys
from telemed.store.clinic_directory import profile_of
from telemed.store.db import Database
from telemed.store.models import InboxEvent

pytestmark = pytest.mark.integration

ZOOM_SECRET = "canary-zoom-client-secret-1"
OAUTH_SECRET = "canary-oauth-secret-2"
HOOK_SECRET = "canary-webhook-secret-3"


class Cli:
    def __init__(self, database: Database) -> None:
        self.runner = CliRunner()
        self.database = database

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return self.runner.invoke(main, list(args), input=input)


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("TELEMED_DATABASE_URL", database_url)
    monkeypatch.setenv("TELEMED_SECRET_KEYS", key)
    monkeypatch.setenv("TELEMED_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TELEMED_ADMIN_EMAIL", "ops@default.example, ops2@default.example")
    reset_settings_cache()
    database = Database(database_url, cipher=Cipher([key]))
    yield Cli(database)
    database.dispose()
    reset_settings_cache()


def _add_north(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Result:
    secret_file = tmp_path / "zoom.secret"
    secret_file.write_text(ZOOM_SECRET + "\n")
    monkeypatch.setenv("NORTH_OAUTH_SECRET", OAUTH_SECRET)
    return cli("clinics", "add", "north", "--name", "Northside Clinic", "--zoom-account-id", "acc-n",
               "--zoom-client-id", "cid-n", "--zoom-client-secret", f"file:{secret_file}",
               "--oauth-client-id", "oauth-n", "--oauth-client-secret", "env:NORTH_OAUTH_SECRET",
               "--webhook-url", "https://north.example/hooks", "--webhook-secret", "-",
               "--mail-from", "Northside <no-reply@north.example>", "--reply-to", "desk@north.example",
               "--reminder-offsets", "48h, 1h", "--admin-email", "a@north.example", "--admin-email", "b@north.example",
               input=HOOK_SECRET + "\n")


def test_add_reads_secrets_from_their_sources_stores_them_encrypted_and_never_prints_them(
        cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    added = _add_north(cli, tmp_path, monkeypatch)
    assert added.exit_code == 0, added.output
    with cli.database.session() as s:
        row = clinics.get_clinic(s, "north")
        assert row is not None
        profile = profile_of(row)
    assert profile.zoom_account is not None and profile.zoom_oauth is not None
    assert (profile.zoom_account.account_id, profile.zoom_account.client_secret) == ("acc-n", ZOOM_SECRET)
    assert profile.zoom_oauth.client_secret == OAUTH_SECRET and profile.webhook_secret == HOOK_SECRET
    assert profile.admin_emails == ("a@north.example", "b@north.example")
    assert profile.reminder_offsets == "48h,1h" and profile.mail_reply_to == "desk@north.example"
    # At rest: ciphertext only.
    with cli.database.engine.connect() as conn:
        raw = conn.execute(sqlalchemy.text("SELECT * FROM clinics")).all()
    for secret in (ZOOM_SECRET, OAUTH_SECRET, HOOK_SECRET):
        assert secret not in repr(raw)

    shown = cli("clinics", "show", "north")
    listed = cli("clinics", "list")
    assert shown.exit_code == 0 and listed.exit_code == 0
    for secret in (ZOOM_SECRET, OAUTH_SECRET, HOOK_SECRET):
        assert secret not in shown.output + listed.output + added.output
    assert re.search(r"webhook secret:\s+set", shown.output)
    assert re.search(r"zoom webhook secret:\s+not set", shown.output)
    assert "acc-n" in shown.output and "a@north.example, b@north.example" in shown.output
    assert "north" in listed.output and "Northside Clinic" in listed.output and "default" in listed.output

    default = cli("clinics", "show", "default")
    assert default.exit_code == 0 and "from environment variables" in default.output
    assert "ops@default.example, ops2@default.example" in default.output  # TELEMED_ADMIN_EMAIL, split


def test_a_secret_on_the_command_line_is_refused_without_echoing_it(cli: Cli) -> None:
    result = cli("clinics", "add", "north", "--name", "North", "--zoom-account-id", "a", "--zoom-client-id", "c",
                 "--zoom-client-secret", "literal-canary-secret")
    assert result.exit_code == 2 and "--zoom-client-secret" in result.output
    assert "env:VARIABLE, file:PATH or -" in result.output and "literal-canary-secret" not in result.output
    missing = cli("clinics", "add", "north", "--name", "North", "--webhook-url", "https://n.example/h",
                  "--webhook-secret", "env:NO_SUCH_VARIABLE_HERE")
    assert missing.exit_code == 2 and "NO_SUCH_VARIABLE_HERE" in missing.output
    with cli.database.session() as s:
        assert clinics.list_clinics(s) == []


@pytest.mark.parametrize(("args", "message"), [
    (["clinics", "add", "default", "--name", "X"], "'default' is the clinic configured from environment"),
    (["clinics", "add", "North_1", "--name", "X"], "clinic id: a clinic id is 1 to 40 of a-z"),
    (["clinics", "add", "north"], "--name is required"),
    (["clinics", "add", "north", "--name", "X", "--mail-from", "not an address"], "mail_from: must be an address"),
    (["clinics", "add", "north", "--name", "X", "--webhook-url", "http://north.example/h"], "must use https://"),
    (["clinics", "add", "north", "--name", "X", "--reminder-offsets", "soon"], "reminder_offsets: must be like"),
    (["clinics", "add", "north", "--name", "X", "--admin-email", "nobody"], "admin_emails: 'nobody' is not"),
    (["clinics", "add", "north", "--name", "X", "--zoom-account-id", "a"], "needs all three"),
    (["clinics", "add", "north", "--name", "X\u202egpj"], "name: control or invisible format characters"),
])
def test_bad_input_is_one_clear_line_and_nothing_is_written(cli: Cli, args: list[str], message: str) -> None:
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    with cli.database.session() as s:
        assert clinics.list_clinics(s) == []


def test_update_clear_suspend_resume(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _add_north(cli, tmp_path, monkeypatch).exit_code == 0
    updated = cli("clinics", "update", "north", "--mail-from", "North <hello@north.example>", "--admin-email",
                  "c@north.example", "--clear", "webhook", "--clear", "zoom-oauth")
    assert updated.exit_code == 0, updated.output
    with cli.database.session() as s:
        row = clinics.get_clinic(s, "north")
        assert row is not None
        profile = profile_of(row)
    assert profile.mail_from == "North <hello@north.example>" and profile.admin_emails == ("c@north.example",)
    assert profile.webhook_url is None and profile.webhook_secret is None and profile.zoom_oauth is None
    assert profile.zoom_account is not None and profile.zoom_account.client_secret == ZOOM_SECRET  # untouched

    half = cli("clinics", "update", "north", "--clear", "zoom-account", "--zoom-client-id", "x")
    assert half.exit_code == 2 and "--clear zoom-account and a new value" in half.output
    assert cli("clinics", "update", "north").exit_code == 2  # nothing to change
    unknown = cli("clinics", "update", "south", "--name", "South")
    assert unknown.exit_code == 1 and "no clinic 'south'" in unknown.output

    assert "suspended" in cli("clinics", "suspend", "north").output
    assert "already suspended" in cli("clinics", "suspend", "north").output
    assert re.search(r"status:\s+suspended", cli("clinics", "show", "north").output)
    assert "resumed" in cli("clinics", "resume", "north").output
    assert cli("clinics", "suspend", "default").exit_code == 2


def test_ingress_keys_and_refusals(cli: Cli) -> None:
    assert cli("clinics", "add", "north", "--name", "North").exit_code == 0
    made = [cli("clinics", "ingress-key", "add", "north") for _ in range(2)]
    assert all(m.exit_code == 0 for m in made)
    ids = [re.search(r"key id: (ck_[0-9a-f]{16})", m.stdout).group(1) for m in made]  # type: ignore[union-attr]
    secrets = [re.search(r"secret: ([0-9a-f]{64})", m.stdout).group(1) for m in made]  # type: ignore[union-attr]
    assert "only time" in made[0].stderr
    third = cli("clinics", "ingress-key", "add", "north")
    assert third.exit_code == 2 and "retire one first" in third.output

    listed = cli("clinics", "ingress-key", "list", "north")
    assert listed.exit_code == 0 and all(i in listed.output for i in ids)
    assert not any(s in listed.output for s in secrets) and not any(s in cli("clinics", "show", "north").output
                                                                    for s in secrets)
    with cli.database.session() as s:  # the secret is what the door checks signatures with
        found = ingress_keys.find_key(s, ids[0])
        assert found is not None and found.secret == secrets[0] and found.clinic_id == "north"
    with cli.database.engine.connect() as conn:
        raw = repr(conn.execute(sqlalchemy.text("SELECT * FROM clinic_ingress_keys")).all())
    assert not any(s in raw for s in secrets)  # encrypted at rest

    retired = cli("clinics", "ingress-key", "retire", ids[0])
    assert retired.exit_code == 0 and "retired" in retired.output
    assert cli("clinics", "ingress-key", "retire", ids[0]).exit_code == 1
    assert cli("clinics", "ingress-key", "add", "north").exit_code == 0  # room again
    assert cli("clinics", "ingress-key", "add", "south").exit_code == 1  # no such clinic

    with cli.database.session() as s:
        ingress_keys.record_refusal(s, signer_clinic_id="north", key_id=ids[1], named_clinic_id="south",
                                    event_id="evt-9", reason="names another clinic")
    refused = cli("clinics", "refusals", "north")
    assert refused.exit_code == 0 and "evt-9" in refused.output and "'south'" in refused.output
    assert "1 refused event(s)" in refused.output
    assert "0 refused event(s)" in cli("clinics", "refusals", "default").output


def test_keys_create_for_a_clinic(cli: Cli) -> None:
    unknown = cli("keys", "create", "--role", "admin", "--clinic", "north")
    assert unknown.exit_code == 2 and "no clinic 'north'" in unknown.output
    assert cli("clinics", "add", "north", "--name", "North").exit_code == 0
    made = cli("keys", "create", "--role", "doctor:D-1", "--clinic", "north")
    assert made.exit_code == 0, made.output
    with cli.database.session() as s:
        who = api_keys.authenticate(s, made.stdout.strip().splitlines()[0])
    assert who is not None and (who.clinic_id, who.doctor_id, who.doctor_key) == ("north", "D-1", "north/D-1")
    listed = cli("keys", "list", "--clinic", "north")
    assert listed.exit_code == 0 and "north" in listed.output and "doctor:D-1" in listed.output
    assert "no API" not in listed.output


def test_publish_into_a_clinic(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    queued: list[str] = []
    module = sys.modules[Publisher.__module__]
    monkeypatch.setattr(module, "_default", Publisher(database=cli.database, enqueue=queued.append))
    monkeypatch.setattr("telemed.cli._setup_logging", lambda: None)
    event = json.dumps(booking("A-1", 1, datetime.now(UTC) + timedelta(days=2), event_id="evt-1"))
    unknown = cli("publish", "--clinic", "north", "-", input=event)
    assert unknown.exit_code == 2 and "--clinic: no clinic 'north'" in unknown.output
    assert cli("clinics", "add", "north", "--name", "North").exit_code == 0
    published = cli("publish", "--clinic", "north", "-", input=event)
    assert published.exit_code == 0 and "evt-1 accepted" in published.output
    assert cli("publish", "-", input=event).exit_code == 0  # the default clinic: another event
    assert sorted(queued) == ["evt-1", "north/evt-1"]
    with cli.database.session() as s:
        rows = {(r.event_id, r.clinic_id) for r in s.exec(sqlalchemy.select(InboxEvent)).scalars()}
    assert rows == {("evt-1", "default"), ("north/evt-1", "north")}
    assert cli("clinics", "suspend", "north").exit_code == 0
    suspended = cli("publish", "--clinic", "north", "-", input=event)
    assert suspended.exit_code == 2 and "suspended" in suspended.output
