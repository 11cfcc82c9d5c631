"""The web app on a real server over a seeded store: appointments with real meetings in
the Zoom simulator, API keys for every role, and the real start_url fetcher.

Each clinic asked for (the default one unless told otherwise) gets the same external ids:
doctors D-1 and D-2, appointments A-1, A-2, A-C (cancelled) and A-P (pending), stored
under the clinic's scoped keys, so a test can ask one clinic's key for another's ids."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from cryptography.fernet import Fernet

from telemed.foundation.tenancy import DEFAULT_CLINIC, scoped
from telemed.settings import Settings, load_settings
from telemed.store import api_keys, appointments, clinics
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
    keys: dict[str, str] = field(default_factory=dict)  # the first clinic's, by role
    revoked_key: str = ""
    clinic_keys: dict[str, dict[str, str]] = field(default_factory=dict)  # clinic → role → key
    meetings: dict[str, int] = field(default_factory=dict)  # appointment key → Zoom meeting id


def seed_appointment(clinic: str, id: str, doctor: str, start: datetime, **overrides: Any) -> Appointment:
    values: dict[str, Any] = dict(
        id=scoped(clinic, id), version=1, desired="scheduled", state="provisioned", synced_version=1,
        timezone="Europe/Berlin", doctor_id=scoped(clinic, doctor), patient_id=f"P-{id}",
        patient_name=PATIENT_NAMES.get(id, "Canary Otherpatient"), patient_email=f"{id.lower()}.canary@example.org",
        last_event_id=scoped(clinic, f"evt-{id}"), start_time=start, duration_minutes=30, clinic_id=clinic,
        event_clinic_id="C-1", clinic_name="Northside Clinic",
    )
    values.update(overrides)
    return Appointment(**values)


def seed_meeting(ctx: WorkerContext, appointment: Appointment, host: str) -> Meeting:
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


def doctor_host(clinic: str, doctor: str) -> str:
    return f"{doctor.lower()}@{'clinic' if clinic == DEFAULT_CLINIC else clinic}.example"


def _seed_clinic(database: Database, ctx: WorkerContext, clinic: str, start: datetime) -> tuple[dict[str, str], str,
                                                                                                  dict[str, int]]:
    """One clinic's doctors, appointments, meetings and keys: (keys by role, a revoked key, meetings)."""
    with database.session() as s:
        if clinic != DEFAULT_CLINIC:
            clinics.add_clinic(s, clinic, f"Clinic {clinic}", zoom_account_id="test-account",
                               zoom_client_id="test-client", zoom_client_secret="test-secret")
        for doctor in ("D-1", "D-2"):
            appointments.upsert_doctor(s, id=scoped(clinic, doctor), name=f"Dr. {doctor}",
                                       email=doctor_host(clinic, doctor), zoom_user=doctor_host(clinic, doctor), clinic_id=clinic)
        a1 = seed_appointment(clinic, "A-1", "D-1", start)
        a2 = seed_appointment(clinic, "A-2", "D-2", start + timedelta(hours=1))
        cancelled = seed_appointment(clinic, "A-C", "D-1", start, version=2, synced_version=2, desired="cancelled",
                                 state="cancelled")
        pending = seed_appointment(clinic, "A-P", "D-1", start, state="pending", synced_version=0)
        appointments.save(s, a1, a2, cancelled, pending)
    meetings = [seed_meeting(ctx, a1, doctor_host(clinic, "D-1")), seed_meeting(ctx, a2, doctor_host(clinic, "D-2")),
                seed_meeting(ctx, cancelled, doctor_host(clinic, "D-1"))]
    meetings[2].deleted_at = datetime.now(UTC)
    with database.session() as s:
        appointments.save(s, *meetings)
        keys = {}
        for role in ("admin", "booking", "doctor:D-1", "doctor:D-2"):
            _row, keys[role] = api_keys.create_key(s, role, label=f"test {role}", clinic_id=clinic)
        revoked_row, revoked = api_keys.create_key(s, "admin", label="revoked", clinic_id=clinic)
        api_keys.revoke_key(s, revoked_row.prefix)
    return keys, revoked, {m.appointment_id: m.zoom_meeting_id for m in meetings}


@contextmanager
def seeded_web(database_url: str, redis_url: str, namespace: str, zoom_sim: Any, tmp_path: Path,
               clinic_ids: Sequence[str] = (DEFAULT_CLINIC,), **overrides: Any) -> Iterator[SeededWeb]:
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
    seeded = SeededWeb("", settings, database, ctx)
    for clinic in clinic_ids:
        keys, revoked, meetings = _seed_clinic(database, ctx, clinic, start)
        seeded.clinic_keys[clinic] = keys
        seeded.meetings.update(meetings)
        if not seeded.keys:
            seeded.keys, seeded.revoked_key = keys, revoked
    client = redis.Redis.from_url(redis_url)
    services = WebServices(settings=settings, database=database, redis=client, publisher=None,  # type: ignore[arg-type]
                           enqueue=Recorder(), clinics=ctx.clinics,
                           start_url_fetcher=lambda a: fetch_start_url(ctx, a))
    try:
        with running_app(services) as url:
            seeded.url = url
            yield seeded
    finally:
        client.close()
        database.dispose()
