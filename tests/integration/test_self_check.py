"""``telemed check`` (a real process) and ``/readyz``: what a deployment gets wrong, in words.

A working deployment passes; one whose Redis URL names a replica, whose schema was never
migrated, whose Zoom secret and SMTP password are wrong gets each named, exit code 1,
and never a secret echoed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis
from cryptography.fernet import Fernet

from telemed import selfcheck
from telemed.store.db import Database
from telemed.zoom.simulator import ZoomSimulator
from tests.support.chaos.cluster import REPO
from tests.support.databases import fresh_database
from tests.support.sentinel import sentinel_group
from tests.support.smtp import smtp_server
from tests.support.webapp import running_app, settings_for, web_services

pytestmark = pytest.mark.integration
ZOOM_SECRET = "check-zoom-secret-4b1e"
SMTP_PASSWORD = "check-smtp-pass-77a0"


def _check(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TELEMED_")}
    base.update(env, PYTHONPATH=str(REPO), TELEMED_SECRET_KEYS=Fernet.generate_key().decode(),
                TELEMED_DATA_DIR=str(cwd / "data"))
    return subprocess.run([sys.executable, "-m", "telemed", "check"], env=base, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def _deployment(redis_url: str, database_url: str, sim: ZoomSimulator, smtp_url: str, zoom_secret: str) -> dict[str, str]:
    return {"TELEMED_REDIS_URL": redis_url, "TELEMED_DATABASE_URL": database_url,
            "TELEMED_ZOOM_API_URL": sim.api_url, "TELEMED_ZOOM_OAUTH_URL": sim.oauth_url,
            "TELEMED_ZOOM_ACCOUNT_ID": "check-account", "TELEMED_ZOOM_CLIENT_ID": "check-client",
            "TELEMED_ZOOM_CLIENT_SECRET": zoom_secret, "TELEMED_SMTP_URL": smtp_url}


def test_a_working_deployment_passes(redis_url: str, tmp_path: Path) -> None:
    sim = ZoomSimulator(client_id="check-client", client_secret=ZOOM_SECRET, account_id="check-account")
    with fresh_database("sqlite", tmp_path, None) as database_url, sim, \
            smtp_server(credentials={"clinic": SMTP_PASSWORD}) as smtp:
        done = _check(_deployment(redis_url, database_url, sim, smtp.url("clinic", SMTP_PASSWORD), ZOOM_SECRET),
                      tmp_path)
        assert smtp.auth_attempts, "the check never logged in"
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("store", "redis", "clock", "migrations", "zoom", "smtp"):
        assert any(line.startswith("ok") and f" {name} " in f"{line} " for line in done.stdout.splitlines()), name
    assert "token granted" in done.stdout and "everything checked is fine" in done.stdout


def test_what_is_wrong_is_named_in_words(tmp_path: Path) -> None:
    sim = ZoomSimulator(client_id="check-client", client_secret=ZOOM_SECRET, account_id="check-account")
    unmigrated = f"sqlite:///{tmp_path / 'empty.db'}"
    with sentinel_group(tmp_path / "redis") as group, sim, \
            smtp_server(credentials={"clinic": SMTP_PASSWORD}) as smtp:
        replica = f"redis://127.0.0.1:{group.nodes[group.replica()].port}/0"
        wrong_smtp = smtp.url("clinic", "not-the-password-5c")
        done = _check(_deployment(replica, unmigrated, sim, wrong_smtp, "not-the-zoom-secret-91"), tmp_path)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "answers as a slave, not a primary" in out
    assert "run `telemed db upgrade`" in out
    assert "token grant failed" in out and "HTTP 401" in out
    assert "SMTP authentication failed" in out
    assert "4 problem(s): redis, migrations, zoom, smtp" in out
    for secret in ("not-the-password-5c", "not-the-zoom-secret-91", ZOOM_SECRET, SMTP_PASSWORD):
        assert secret not in out + done.stderr
    assert "Traceback" not in done.stderr


def test_sentinels_are_checked_and_named(tmp_path: Path) -> None:
    with sentinel_group(tmp_path / "redis") as group, fresh_database("sqlite", tmp_path, None) as database_url:
        env = {"TELEMED_REDIS_SENTINELS": group.sentinels + ",127.0.0.1:9", "TELEMED_REDIS_MASTER_NAME": group.master_name,
               "TELEMED_DATABASE_URL": database_url}
        done = _check(env, tmp_path)
        primary = group.nodes[group.primary()].port
    assert f"3 of 4 answer; primary 127.0.0.1:{primary}; silent: 127.0.0.1:9" in done.stdout
    assert done.returncode == 1 and "1 problem(s): sentinels" in done.stdout


def test_readyz_runs_the_same_checks(redis_client: redis.Redis, redis_namespace: str, tmp_path: Path) -> None:
    settings = settings_for(redis_namespace, database_url=f"sqlite:///{tmp_path / 'empty.db'}", data_dir=tmp_path)
    database = Database(settings.resolved_database_url)
    services = web_services(settings, database, redis_client)
    services.self_check = selfcheck.readiness(settings, redis_client, database)
    with running_app(services) as url:
        answer = httpx.get(f"{url}/readyz", timeout=30)
    database.dispose()
    assert answer.status_code == 503, answer.text
    checks = answer.json()["checks"]
    assert checks["store"] == "ok" and checks["redis"] == "ok" and checks["clock"] == "ok"
    assert "run `telemed db upgrade`" in checks["migrations"]
    assert checks["zoom"].startswith("no account app configured")  # reported, not decisive
    (tmp_path / "migrated").mkdir()
    with fresh_database("sqlite", tmp_path / "migrated", None) as database_url:
        settings = settings.model_copy(update={"database_url": database_url})
        database = Database(database_url)
        services = web_services(settings, database, redis_client)
        services.self_check = selfcheck.readiness(settings, redis_client, database)
        with running_app(services) as url:
            answer = httpx.get(f"{url}/readyz", timeout=30)
        database.dispose()
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "ready"
