"""Leak scan of a whole pipeline run: no secret anywhere it does not belong.

Real processes (``telemed web``, a worker, ``telemed scheduler``) run a scenario that
touches every path a secret travels: signed events through the HTTP ingress, meetings
created, moved and deleted, invitations, a reminder, signed start links clicked by the
doctor, the access API for the booking system and the doctor, a Zoom webhook, and
status callbacks to the booking system. Then every canary (each access token, ZAK, join
link, passcode, API key, start-link signature, secret and patient email and name) is
searched for in every log, every Redis key and value, the database (SQLite's bytes or
each PostgreSQL table's text) and everything a patient, doctor or the booking system
received. Each place may only carry what is its own; the test fails naming each hit.

Runs on both backends. It supersedes tests/integration/test_no_secrets_leak.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
from cryptography.fernet import Fernet
from sqlmodel import select

from telemed.events import signing
from telemed.foundation.cipher import Cipher
from telemed.samples import booking
from telemed.store.db import Database
from telemed.store.models import Meeting, OutboxMessage
from telemed.zoom import policy, webhooks
from telemed.zoom.simulator import ZoomSimulator
from tests.support.chaos.cluster import REPO, Cluster
from tests.support.leaks import scan
from tests.support.smtp import smtp_server
from tests.support.webhook_receiver import webhook_receiver
from tests.support.webserver import free_port

pytestmark = pytest.mark.integration

INGRESS_SECRET = "leak-ingress-secret-c0ffee42"
WEBHOOK_SECRET = "leak-booking-webhook-secret-9f1e"
ZOOM_TOKEN = "leak-zoom-webhook-token-77aa"
CLIENT_SECRET = "leak-zoom-client-secret-31d7"
ADMIN = "ops.leak@clinic.example"
START_LINK = re.compile(r"https?://[^\s\"<>]+/start/([A-Za-z0-9._-]+)")
APPOINTMENTS = ("LK-1", "LK-2", "LK-3")


def _patient(appointment_id: str) -> tuple[str, str]:
    token = appointment_id.replace("-", "").lower()
    return f"Leakpatient Qv{token}x", f"leak.{token}@patients.leak.example"


def _event(appointment_id: str, version: int, start: datetime, kind: str = "appointment.booked") -> dict:
    name, email = _patient(appointment_id)
    event = booking(appointment_id, version, start, type=kind, patient=name)
    event["appointment"]["patient"]["email"] = email
    return event


def _env(redis_url: str, namespace: str, database_url: str, key: str, sim: ZoomSimulator, smtp_url: str,
         hooks_url: str, web_port: int, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMED_")}
    env.update({
        "TELEMED_REDIS_URL": redis_url, "TELEMED_REDIS_NAMESPACE": namespace, "TELEMED_DATABASE_URL": database_url,
        "TELEMED_SECRET_KEYS": key, "TELEMED_DATA_DIR": str(workdir / "data"), "TELEMED_MAIL_DIR": str(workdir / "mail"),
        "TELEMED_ZOOM_API_URL": sim.api_url, "TELEMED_ZOOM_OAUTH_URL": sim.oauth_url,
        "TELEMED_ZOOM_ACCOUNT_ID": "leak-account", "TELEMED_ZOOM_CLIENT_ID": "leak-client",
        "TELEMED_ZOOM_CLIENT_SECRET": CLIENT_SECRET, "TELEMED_SMTP_URL": smtp_url,
        "TELEMED_INGRESS_SECRET": INGRESS_SECRET, "TELEMED_ZOOM_WEBHOOK_SECRET_TOKEN": ZOOM_TOKEN,
        "TELEMED_PUBLIC_URL": f"http://127.0.0.1:{web_port}", "TELEMED_WEBHOOK_URL": hooks_url,
        "TELEMED_WEBHOOK_SECRET": WEBHOOK_SECRET, "TELEMED_ADMIN_EMAIL": ADMIN,
        "TELEMED_REMINDER_OFFSETS": "24h,1m", "TELEMED_SCHEDULER_INTERVAL_SECONDS": "1",
        "TELEMED_RECONCILE_GRACE_SECONDS": "5", "TELEMED_NOTIFICATION_RETRY_BASE_SECONDS": "0.5",
        "TELEMED_LOG_FORMAT": "json", "TELEMED_LOG_LEVEL": "DEBUG", "PYTHONPATH": str(REPO),
    })
    return env


def test_a_whole_run_leaks_nothing(backend, tmp_path: Path, redis_namespace: str) -> None:  # type: ignore[no-untyped-def]
    redis_url, database_url = backend
    key = Fernet.generate_key().decode()
    database = Database(database_url, cipher=Cipher([key]))
    client = redis.Redis.from_url(redis_url)
    received: list[scan.Place] = []  # what the booking system and the doctor's browser got back
    sim = ZoomSimulator(client_id="leak-client", client_secret=CLIENT_SECRET, account_id="leak-account")
    with sim, smtp_server() as smtp, webhook_receiver() as hooks:
        port = free_port()
        cluster = Cluster(_env(redis_url, redis_namespace, database_url, key, sim, smtp.url(), hooks.url, port,
                               tmp_path), tmp_path, web_port=port, workers=1, threads=4, scheduler_interval=1.0)
        try:
            cluster.start()
            web = httpx.Client(base_url=cluster.web_url, timeout=30)
            now = datetime.now(UTC).replace(microsecond=0)
            later = now + timedelta(days=3)
            # LK-1 starts in about a minute: its "1m" reminder falls due during the run.
            for event in (_event("LK-1", 1, now + timedelta(seconds=75)), _event("LK-2", 1, later),
                          _event("LK-3", 1, later)):
                _post(web, event, received)
            _wait(lambda: _sent(database, "invite") >= 6, cluster, "the invitations")
            _post(web, _event("LK-2", 2, later + timedelta(hours=2), "appointment.rescheduled"), received)
            _post(web, _event("LK-3", 2, later, "appointment.cancelled"), received)
            _wait(lambda: _sent(database, "updated") >= 2 and _sent(database, "cancelled") >= 2, cluster,
                  "the update and the cancellation")
            _wait(lambda: _sent(database, "reminder-1m") >= 2, cluster, "LK-1's reminders", timeout=120)

            # The doctor opens the start link from their mail; the booking system and the
            # doctor read the access API.
            _click_start_link(web, smtp.messages, received)
            keys = {role: _api_key(cluster, role) for role in ("booking", "doctor:D-1")}
            for role, api_key in keys.items():
                answer = web.get("/v1/appointments/LK-2/meeting", headers={"Authorization": f"Bearer {api_key}"})
                assert answer.status_code == 200, answer.text
                allowed = {scan.JOIN, scan.PASSCODE} | ({scan.ZAK} if role.startswith("doctor") else set())
                received.append(scan.Place(f"access API answer to {role}", answer.content,
                                           lambda c, allowed=frozenset(allowed): c.owner == "LK-2" and c.kind in allowed))
            # Zoom says LK-2's meeting started: the booking system hears of it.
            _zoom_webhook(web, database, "LK-2", received)
            _wait(lambda: any(json.loads(h.body).get("event") == "started" for h in hooks.delivered()), cluster,
                  "the started callback")
            _wait(lambda: _settled(database), cluster, "every notice to settle")
        finally:
            cluster.stop()

        canaries = _canaries(sim, database, smtp.messages, keys, key)
        places = [scan.Place(f"{name} log", text.encode()) for name, text in cluster.logs().items()]
        places += list(scan.redis_places(client, match=f"{redis_namespace}*"))
        places += list(scan.database_places(database.engine, scan.sqlite_path_of(database_url)))
        places += list(scan.mail_places(smtp.messages, raw_start_links=False))
        places += [_webhook_place(h) for h in hooks.received]
        places += received
        hits = scan.scan(places, canaries)
        mails, hooks_got = len(smtp.messages), len(hooks.received)
    database.dispose()
    for name in list(client.scan_iter(match=f"{redis_namespace}*")):
        client.delete(name)
    client.close()

    # The scan must have had something to find, or a pass proves nothing.
    log_bytes = sum(len(p.data) for p in places if p.name.endswith(" log"))
    assert canaries.count(scan.ZAK) >= 2 and canaries.count(scan.JOIN) >= 3 and canaries.count(scan.TOKEN) >= 1
    assert canaries.count(scan.SECRET) == 7 and canaries.count(scan.START_LINK) >= 2 and mails >= 10 and hooks_got >= 5 and log_bytes > 50_000
    assert hits == [], "secrets out of place:\n  " + "\n  ".join(hits)


def _post(web: httpx.Client, event: dict, received: list[scan.Place]) -> None:
    body = json.dumps(event).encode()
    answer = web.post("/v1/events", content=body, headers=signing.sign(INGRESS_SECRET, body).headers)
    assert answer.status_code == 202, answer.text
    received.append(scan.Place(f"ingress answer for {event['event_id']}", answer.content))


def _sent(database: Database, kind: str) -> int:
    with database.session() as s:
        rows = s.exec(select(OutboxMessage).where(OutboxMessage.kind == kind, OutboxMessage.status == "sent"))
        return len(list(rows))


def _settled(database: Database) -> bool:
    with database.session() as s:
        return s.exec(select(OutboxMessage).where(OutboxMessage.status == "pending",
                                                  OutboxMessage.next_attempt_at <= datetime.now(UTC))).first() is None


def _wait(condition, cluster: Cluster, what: str, timeout: float = 90) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        cluster.check_alive()
        for proc in cluster.worker_procs:
            if not proc.alive:
                raise AssertionError(f"the worker died:\n{cluster.log_tail(proc.name)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{cluster.log_tail('worker-1')}")
        time.sleep(0.3)


def _click_start_link(web: httpx.Client, messages, received: list[scan.Place]) -> None:  # type: ignore[no-untyped-def]
    doctor_mail = [m for m in messages if ".doctor.updated." in str(m["Message-ID"]) and "LK-2" in str(m["Message-ID"])]
    assert doctor_mail, "the doctor was not told of the move"
    from tests.support.mail_scan import everything

    link = START_LINK.search(everything(doctor_mail[-1]))
    assert link, "the doctor's mail carries no signed start link"
    answer = web.get(link.group(0).split(str(web.base_url).rstrip("/"), 1)[-1], follow_redirects=False)
    assert answer.status_code == 302 and "zak=" in answer.headers["location"], answer.text[:300]
    received.append(scan.Place("the doctor's browser (start link redirect)", answer.headers["location"].encode(),
                               lambda c: c.owner == "LK-2" and c.kind in {scan.ZAK, scan.JOIN}))


def _api_key(cluster: Cluster, role: str) -> str:
    result = subprocess.run([sys.executable, "-m", "telemed", "keys", "create", "--role", role, "--label", "leak"],
                            env=cluster.env, cwd=cluster.workdir, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    found = re.search(rb"tmk_[0-9a-f]+_[A-Za-z0-9_-]+", result.stdout)
    assert found, result.stdout.decode()
    return found.group(0).decode()


def _zoom_webhook(web: httpx.Client, database: Database, appointment_id: str, received: list[scan.Place]) -> None:
    with database.session() as s:
        meeting = s.exec(select(Meeting).where(Meeting.appointment_id == appointment_id)).one()
    body = json.dumps({"event": "meeting.started", "event_ts": int(time.time() * 1000),
                       "payload": {"account_id": "leak-account",
                                   "object": {"id": str(meeting.zoom_meeting_id), "host_id": "h"}}}).encode()
    ts = str(int(time.time()))
    answer = web.post("/zoom/webhook", content=body, headers={
        "Content-Type": "application/json", webhooks.TIMESTAMP_HEADER: ts,
        webhooks.SIGNATURE_HEADER: webhooks.zoom_signature(ZOOM_TOKEN, ts, body)})
    assert answer.status_code in (200, 204), answer.text
    received.append(scan.Place("Zoom webhook answer", answer.content))


def _webhook_place(hook) -> scan.Place:  # type: ignore[no-untyped-def]
    """A status callback to the booking system: that appointment's join link, nothing else."""
    try:
        owner = json.loads(hook.body)["appointment"]["id"]
    except (ValueError, KeyError, TypeError):
        owner = None
    return scan.Place(f"webhook to the booking system ({owner})", hook.body + b"\n" + json.dumps(hook.headers).encode(),
                      lambda c: owner is not None and c.owner == owner and c.kind == scan.JOIN)


def _canaries(sim: ZoomSimulator, database: Database, messages, keys: dict[str, str], fernet_key: str) -> scan.Canaries:  # type: ignore[no-untyped-def]
    from tests.support.mail_scan import everything

    canaries = scan.Canaries()
    markers = {policy.make_marker(a): a for a in APPOINTMENTS}
    owners = {int(v["id"]): a for v in sim.meetings() for m, a in markers.items() if m in str(v["meeting"].get("agenda"))}
    scan.zoom_canaries(canaries, sim, owners)
    for appointment_id in APPOINTMENTS:
        name, email = _patient(appointment_id)
        canaries.add(scan.PATIENT_EMAIL, email, appointment_id)
        canaries.add(scan.PATIENT_NAME, name.split()[-1], appointment_id)
    for message in messages:  # the signature part of each signed start link: the doctor's alone
        for token in START_LINK.findall(everything(message)):
            owner = str(message["Message-ID"]).strip().strip("<").split(".v")[0]
            canaries.add(scan.START_LINK, token.rsplit(".", 1)[-1], owner)
    for value in (*keys.values(), INGRESS_SECRET, WEBHOOK_SECRET, ZOOM_TOKEN, CLIENT_SECRET, fernet_key.rstrip("=")):
        canaries.add(scan.SECRET, value)
    return canaries
