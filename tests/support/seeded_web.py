"""The web app on a real server over a seeded store: appointments with real meetings in
the Zoom simulator, API keys for every role, and the real start_url fetcher."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from cryptography.fernet import Fernet

from telemed.settings import Settings, load_settings
from telemed.store import api_keys, appointments
from telemed.store.db import Database
from telemed.store.models import Appointment, Meeting, utcnow
from telemed.web.services import WebServices
from telemed.workers.context import WorkerContext
from telemed.workers.hosting.start_urls import fetch_start_url
from telemed.zoom import policy
from tests.support.contexts import cipher_database, worker_context
from tests.support.webapp import Recorder, running_app

PATIENT_NAMES = {"A-1": "Canary Patientone", "A-2": "Canary Patienttwo", "A-C": "Canary Cancelled",
                 "A-P": "Canary Pending"}


@dataclass
class SeededWeb:
    url: str
    settings: Settings
    database: Database
    context: WorkerContext
    keys: dict[str, str] = field(default_factory=dict)
    revoked_key: str = ""


def _appointment(id: str, doctor: str, start: datetime, **overrides: Any) -> Appointment:
    values: dict[str, Any] = dict(
        id=id, version=1, desired="scheduled", state="provisioned", synced_version=1, timezone="Europe/Berlin",
        doctor_id=doctor, patient_id=f"P-{id}", patient_name=PATIENT_NAMES[id],
        patient_email=f"{id.lower()}.canary@example.org", last_event_id=f"evt-{id}", start_time=start,
        duration_minutes=30, clinic_id="C-1", clinic_name="Northside Clinic",
    )
    values.update(overrides)
    return Appointment(**values)


def _meeting(ctx: WorkerContext, appointment: Appointment, host: str) -> Meeting:
    assert appointment.start_time is not None
    body = policy.build_meeting_request(
        topic="Telemed video appointment", start_time=appointment.start_time, duration_minutes=30,
        timezone=appointment.timezone, passcode=policy.generate_passcode(),
        marker=policy.make_marker(appointment.id))
    created = ctx.zoom.create_meeting(host, body)
    return Meeting(appointment_id=appointment.id, zoom_meeting_id=int(created["id"]), host=host,
                   join_url=created["join_url"], passcode=created.get("password") or "",
                   start_time=appointment.start_time, duration_minutes=30, timezone=appointment.timezone,
                   synced_version=1)


@contextmanager
def seeded_web(database_url: str, redis_url: str, namespace: str, zoom_sim: Any, tmp_path: Path,
               **overrides: Any) -> Iterator[SeededWeb]:
    key = Fernet.generate_key().decode()
    values: dict[str, Any] = dict(
        redis_url=redis_url, redis_namespace=namespace, database_url=database_url, secret_keys=key,
        data_dir=tmp_path / "data", zoom_api_url=zoom_sim.api_url, zoom_oauth_url=zoom_sim.oauth_url,
        zoom_account_id="test-account", zoom_client_id="test-client", zoom_client_secret="test-secret",
    )
    values.update(overrides)
    settings = load_settings(**values)
    database = cipher_database(database_url, [key])
    ctx = worker_context(settings, database)
    start = utcnow().replace(microsecond=0) + timedelta(days=2)
    with database.session() as s:
        for doctor in ("D-1", "D-2"):
            slug = doctor.lower()
            appointments.upsert_doctor(s, id=doctor, name=f"Dr. {doctor}", email=f"{slug}@clinic.example",
                                       zoom_user=f"{slug}@clinic.example")
        a1 = _appointment("A-1", "D-1", start)
        a2 = _appointment("A-2", "D-2", start + timedelta(hours=1))
        cancelled = _appointment("A-C", "D-1", start, version=2, synced_version=2, desired="cancelled",
                                 state="cancelled")
        pending = _appointment("A-P", "D-1", start, state="pending", synced_version=0)
        appointments.save(s, a1, a2, cancelled, pending)
    meetings = [_meeting(ctx, a1, "d-1@clinic.example"), _meeting(ctx, a2, "d-2@clinic.example"),
                _meeting(ctx, cancelled, "d-1@clinic.example")]
    meetings[2].deleted_at = datetime.now(UTC)
    with database.session() as s:
        appointments.save(s, *meetings)
        keys = {}
        for role in ("admin", "booking", "doctor:D-1", "doctor:D-2"):
            _row, keys[role] = api_keys.create_key(s, role, label=f"test {role}")
        revoked_row, revoked = api_keys.create_key(s, "admin", label="revoked")
        api_keys.revoke_key(s, revoked_row.prefix)
    client = redis.Redis.from_url(redis_url)
    services = WebServices(settings=settings, database=database, redis=client, publisher=None,  # type: ignore[arg-type]
                           enqueue=Recorder(), start_url_fetcher=lambda a: fetch_start_url(ctx, a),
                           clinics=ctx.clinics)
    try:
        with running_app(services) as url:
            yield SeededWeb(url, settings, database, ctx, keys, revoked)
    finally:
        client.close()
        database.dispose()
