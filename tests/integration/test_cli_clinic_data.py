"""The commands on a store and Redis shared by three clinics: ``telemed clinics export`` and
``delete``, and ``--clinic`` on status, doctors, dlq and webhook. A command scoped to one
clinic never shows another's data, and another clinic's id is "not found" like a missing one."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner, Result
from cryptography.fernet import Fernet
from dramatiq.brokers.redis import RedisBroker

from telemed.cli import main
from telemed.foundation import dead_letters
from telemed.foundation.cipher import Cipher
from telemed.foundation.connect_links import read_connect_token
from telemed.settings import reset_settings_cache
from telemed.store.db import Database
from tests.support.clinic_data import Seeded, seed_clinic, seed_redis, traces_in_redis, traces_in_store

pytestmark = pytest.mark.integration


@dataclass
class Env:
    runner: CliRunner
    database: Database
    client: redis.Redis
    namespace: str
    key: str
    clinics: dict[str, Seeded]
    tmp: Path

    def run(self, *args: str, input: str | None = None) -> Result:
        return self.runner.invoke(main, list(args), input=input)


@pytest.fixture
def env(backend: tuple[str, str], redis_namespace: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    redis_url, database_url = backend
    key = Fernet.generate_key().decode()
    for name, value in {"TELEMED_DATABASE_URL": database_url, "TELEMED_REDIS_URL": redis_url,
                        "TELEMED_REDIS_NAMESPACE": redis_namespace, "TELEMED_SECRET_KEYS": key,
                        "TELEMED_DATA_DIR": str(tmp_path), "TELEMED_WEBHOOK_URL": "https://booking.example/hooks",
                        "TELEMED_PUBLIC_URL": "https://telemed.example",
                        "TELEMED_ZOOM_OAUTH_CLIENT_ID": "oauth-id", "TELEMED_ZOOM_OAUTH_CLIENT_SECRET": "oauth-secret",
                        }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    reset_settings_cache()
    database = Database(database_url, cipher=Cipher([key]))
    client = redis.Redis.from_url(redis_url)
    broker = RedisBroker(url=redis_url, namespace=redis_namespace)
    clinics = {c: seed_clinic(database, c, meeting_base=100 * n) for n, c in enumerate(("acme", "bolt", "default"))}
    for seeded in clinics.values():
        seed_redis(client, broker, redis_namespace, seeded)
    yield Env(CliRunner(), database, client, redis_namespace, key, clinics, tmp_path)
    reset_settings_cache()
    for leftover in client.scan_iter(match=f"{redis_namespace}*", count=500):
        client.delete(leftover)
    broker.close()
    client.close()
    database.dispose()


def _others(text: str, *clinics: str) -> list[str]:
    """Marks of ``clinics`` found in ``text`` (their canary or one of their keys)."""
    lowered = text.lower()
    return [m for c in clinics for m in (f"canary{c}", f"{c}/") if m in lowered]


# telemed clinics export ---------------------------------------------------------------------


def test_export_writes_a_private_file_once(env: Env) -> None:
    out = env.tmp / "acme.json"
    made = env.run("clinics", "export", "acme", "--out", str(out), "--page-size", "10")
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600  # it holds patient data
    document = json.loads(out.read_text())
    assert {a["patient_name"] for a in document["appointments"]} == {"Pat CanaryAcme"}
    assert _others(out.read_text(), "bolt", "default") == []
    assert "3 appointments" in made.stderr

    content = out.read_text()
    again = env.run("clinics", "export", "acme", "--out", str(out))
    assert again.exit_code == 1 and "never overwrites" in again.stderr and out.read_text() == content

    missing = env.run("clinics", "export", "nobody", "--out", str(env.tmp / "n.json"))
    assert missing.exit_code == 1 and "no clinic nobody" in missing.stderr
    assert not (env.tmp / "n.json").exists()
    bad = env.run("clinics", "export", "Not An Id")
    assert bad.exit_code == 2 and "a clinic id is" in bad.output

    default_name = env.run("clinics", "export", "bolt")
    assert default_name.exit_code == 0
    [written] = list(env.tmp.glob("telemed-export-bolt-*.json"))
    assert stat.S_IMODE(os.stat(written).st_mode) == 0o600 and "canarybolt" in written.read_text().lower()

    stdout = env.run("clinics", "export", "acme", "--out", "-")
    assert stdout.exit_code == 0 and json.loads(stdout.stdout)["clinic"]["id"] == "acme"


# telemed clinics delete ---------------------------------------------------------------------


def test_delete_asks_for_the_id_and_reports_per_table(env: Env) -> None:
    acme = env.clinics["acme"]
    refused = env.run("clinics", "delete", "default", "--confirm", "default")
    assert refused.exit_code == 1 and "default clinic cannot be deleted" in refused.stderr

    wrong = env.run("clinics", "delete", "acme", "--confirm", "bolt", "--leave-zoom-meetings")
    assert wrong.exit_code == 2 and "nothing was deleted" in wrong.stderr
    typed_wrong = env.run("clinics", "delete", "acme", "--leave-zoom-meetings", input="acm\n")
    assert typed_wrong.exit_code == 2
    upcoming = env.run("clinics", "delete", "acme", "--confirm", "acme")
    assert upcoming.exit_code == 1 and "3 meeting(s) still to come in Zoom" in upcoming.stderr
    both = env.run("clinics", "delete", "acme", "--confirm", "acme", "--leave-zoom-meetings",
                   "--delete-zoom-meetings")
    assert both.exit_code == 2
    assert traces_in_store(env.database, acme)  # nothing deleted so far

    done = env.run("clinics", "delete", "acme", "--leave-zoom-meetings", "--batch-size", "2", input="acme\n")
    assert done.exit_code == 0, done.output
    out = done.stdout
    assert "clinic acme deleted" in out and "zoom meetings left in Zoom: 3" in out
    assert re.search(r"^\s+appointments\s+3$", out, re.M) and re.search(r"^\s+inbox_events\s+6$", out, re.M)
    assert re.search(r"^\s+dead letters: 7$", out, re.M)
    assert traces_in_store(env.database, acme) == []
    assert traces_in_redis(env.client, env.namespace, acme) == []

    again = env.run("clinics", "delete", "acme", "--confirm", "acme")
    assert again.exit_code == 0 and "already erased" in again.stdout
    assert env.run("clinics", "export", "acme", "--out", "-").exit_code == 1
    assert env.run("status", "APT-1", "--clinic", "acme").exit_code == 2  # a deleted clinic is no clinic


# --clinic on the data commands ---------------------------------------------------------------


def test_status_shows_one_clinics_appointment_in_its_own_ids(env: Env) -> None:
    shown = env.run("status", "APT-1", "--clinic", "acme")
    assert shown.exit_code == 0, shown.output
    assert "appointment APT-1" in shown.output and "/" not in shown.output.replace("UTC", "")
    default = env.run("status", "APT-1")
    assert default.exit_code == 0 and "appointment APT-1" in default.output
    for clinic, typed in [("acme", "bolt/APT-1"), ("default", "acme/APT-1"), ("bolt", "APT-9")]:
        missing = env.run("status", typed, "--clinic", clinic)
        assert missing.exit_code == 1 and "no appointment" in missing.output, (clinic, typed)
    assert env.run("status", "APT-1", "--clinic", "nobody").exit_code == 2


def test_doctors_are_listed_and_linked_per_clinic(env: Env) -> None:
    listed = env.run("doctors", "list", "--clinic", "acme")
    assert listed.exit_code == 0, listed.output
    assert "Dr CanaryAcme D-1" in listed.output and "Dr CanaryAcme D-2" in listed.output
    assert _others(listed.output, "bolt", "default", "acme") == ["canaryacme"]  # no key, no one else's
    default = env.run("doctors", "list")
    assert "CanaryDefault" in default.output and _others(default.output, "acme", "bolt") == []

    link = env.run("doctors", "connect-link", "D-1", "--clinic", "acme")
    assert link.exit_code == 0, link.output
    token = link.stdout.strip().split("token=", 1)[1]
    assert read_connect_token([env.key], token).doctor_id == "acme/D-1"
    unknown = env.run("doctors", "connect-link", "D-9", "--clinic", "acme")
    assert unknown.exit_code == 2 and "not known yet" in unknown.output
    crossing = env.run("doctors", "connect-link", "bolt/D-1", "--clinic", "acme")
    assert crossing.exit_code == 2
    assert env.run("doctors", "list", "--clinic", "nobody").exit_code == 2


def _letter_ids(env: Env, clinic: str) -> set[str]:
    listed = env.run("dlq", "list", "--clinic", clinic)
    assert listed.exit_code == 0, listed.output
    return set(re.findall(r"^(\S+)\s+\d{4}-", listed.stdout, re.M))


def test_dead_letters_per_clinic(env: Env) -> None:
    every = {d.message_id for d in dead_letters.list_dead(env.client, env.namespace)}
    assert len(every) == 21
    acme, bolt, default = (_letter_ids(env, c) for c in ("acme", "bolt", "default"))
    assert len(acme) == len(bolt) == len(default) == 7 and acme | bolt | default == every
    listing = env.run("dlq", "list", "--clinic", "acme").stdout
    assert 'sync_meeting("APT-1")' in listing and "acme/" not in listing and "bolt" not in listing

    a_bolt_letter = next(iter(bolt))
    for command in (["dlq", "show", a_bolt_letter], ["dlq", "retry", a_bolt_letter]):
        hidden = env.run(*command, "--clinic", "acme")
        assert hidden.exit_code == 1 and "no dead letter" in hidden.output, command
    shown = env.run("dlq", "show", a_bolt_letter, "--clinic", "bolt")
    assert shown.exit_code == 0 and "arguments:" in shown.stdout

    purged = env.run("dlq", "purge", "--clinic", "acme", "--yes")
    assert purged.exit_code == 0 and "purged 7 dead letter(s)" in purged.stdout
    assert _letter_ids(env, "acme") == set() and _letter_ids(env, "bolt") == bolt
    assert {d.message_id for d in dead_letters.list_dead(env.client, env.namespace)} == bolt | default


def test_webhook_switch_per_clinic(env: Env) -> None:
    status = env.run("webhook", "status", "--clinic", "acme")
    assert status.exit_code == 1 and "webhook enable --clinic acme" in status.output
    enabled = env.run("webhook", "enable", "--clinic", "acme")
    assert enabled.exit_code == 0 and "webhook enabled" in enabled.output
    assert env.run("webhook", "status", "--clinic", "acme").exit_code == 0
    assert env.run("webhook", "status", "--clinic", "bolt").exit_code == 1  # bolt's stays off
    default = env.run("webhook", "status")
    assert default.exit_code == 0 and default.output.strip() == "enabled"  # TELEMED_WEBHOOK_URL
    assert env.run("webhook", "status", "--clinic", "nobody").exit_code == 2
