"""``telemed run`` on one machine: a crash and restart (embedded Redis, queue gone) loses nothing.

Events are accepted over HTTP while Zoom fails, so their work sits in the queue as retries;
then the whole process group is killed, taking the embedded Redis-protocol server and
everything queued in it. After a restart the reconciler finds the owed work in the store.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlmodel import select

from telemed.foundation.cipher import Cipher
from telemed.samples import DOCTORS, booking
from telemed.store.db import Database
from telemed.store.models import Appointment, InboxEvent
from tests.support.webserver import free_port

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
SECRET = "run-test-ingress-secret"


def _env(tmp_path: Path, zoom_sim, web_port: int, redis_port: int, key: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMED_")}
    env.update({
        "PYTHONPATH": str(REPO), "TELEMED_DATA_DIR": str(tmp_path / "data"),
        "TELEMED_DATABASE_URL": f"sqlite:///{tmp_path / 'clinic.db'}", "TELEMED_SECRET_KEYS": key,
        "TELEMED_EMBEDDED_REDIS_PORT": str(redis_port), "TELEMED_INGRESS_SECRET": SECRET,
        "TELEMED_ZOOM_API_URL": zoom_sim.api_url, "TELEMED_ZOOM_OAUTH_URL": zoom_sim.oauth_url,
        "TELEMED_ZOOM_ACCOUNT_ID": "test-account", "TELEMED_ZOOM_CLIENT_ID": "test-client",
        "TELEMED_ZOOM_CLIENT_SECRET": "test-secret", "TELEMED_MAIL_DIR": str(tmp_path / "mail"),
        "TELEMED_SCHEDULER_INTERVAL_SECONDS": "0.5", "TELEMED_RECONCILE_GRACE_SECONDS": "1",
        "TELEMED_LOG_FORMAT": "json", "PORT": str(web_port),
    })
    return env


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "telemed", "run"], env=env, cwd=log.parent,
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)


def _wait(condition, what: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            raise AssertionError(f"telemed run exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{log.read_text()[-3000:]}")


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _post(url: str, event: dict) -> int:  # type: ignore[type-arg]
    body = json.dumps(event).encode()
    ts = str(int(time.time()))
    mac = hmac.new(SECRET.encode(), f"v1:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return httpx.post(f"{url}/v1/events", content=body,
                      headers={"X-Telemed-Timestamp": ts, "X-Telemed-Signature": f"v1={mac}"}).status_code


def test_restart_loses_nothing(zoom_sim, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key = Fernet.generate_key().decode()
    web_port = free_port()
    env = _env(tmp_path, zoom_sim, web_port, free_port(), key)
    url = f"http://127.0.0.1:{web_port}"
    log = tmp_path / "run.log"
    zoom_sim.inject_failure(503, {"code": 503, "message": "down"}, count=10_000, method="POST",
                            path_prefix="/v2/users")  # creates fail: the work waits as retries

    first = _start(env, log)
    try:
        _wait(lambda: _ready(url), "the first run to be ready", first, log)
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
        events = [booking(f"R-{i}", 1, start, doctor=DOCTORS[i]) for i in range(3)]
        assert [_post(url, e) for e in events] == [202, 202, 202]
        database = Database(env["TELEMED_DATABASE_URL"], cipher=Cipher([key]))
        _wait(lambda: _synced(database) == {"R-0": 0, "R-1": 0, "R-2": 0} and _creates(zoom_sim) >= 3,
              "events applied and creates failing", first, log)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # a crash: the embedded Redis and its queue die too
        first.wait()

    with zoom_sim.state.lock:
        zoom_sim.state.faults.clear()  # Zoom is back
    second = _start(env, log)
    try:
        _wait(lambda: all(v == 1 for v in _synced(database).values()), "everything provisioned after restart",
              second, log, timeout=90)
        assert {a.state for a in _appointments(database)} == {"provisioned"}
        assert len([m for m in zoom_sim.meetings() if not m.get("deleted")]) == 3  # one each, no duplicates
        _wait(lambda: len(list((tmp_path / "mail").glob("*.eml"))) == 6, "patient and doctor mails", second, log)
        with database.session() as s:
            assert {e.status for e in s.exec(select(InboxEvent))} == {"applied"}
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        assert second.wait(timeout=60) == 0  # a clean stop of all three parts
        database.dispose()


def _appointments(database: Database) -> list[Appointment]:
    with database.session() as s:
        return list(s.exec(select(Appointment)))


def _synced(database: Database) -> dict[str, int]:
    try:
        return {a.id: a.synced_version for a in _appointments(database)}
    except Exception:  # the schema is being created by the first start
        return {}


def _creates(zoom_sim) -> int:  # type: ignore[no-untyped-def]
    return len([r for r in zoom_sim.requests(method="POST") if r["path"].endswith("/meetings")])
