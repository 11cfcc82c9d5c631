"""Two clinics in one deployment, for the isolation matrix (tests/integration/test_isolation_matrix.py).

Clinic A (``alder``) and clinic B (``birch``) each hold the same kinds of data, written
through the store's own functions: a provisioned appointment with a real meeting in the
Zoom simulator (in the clinic's own Zoom account), its doctor, the clinic's ingress key,
Zoom webhook secret, OAuth app, status webhook and API keys of every role, a failure and
a refused event. Some ids are the same in both clinics on purpose (the assigned doctor is
``D-1`` in each, both have an appointment ``APT-SAME``): a mix-up between clinics then
shows as the other clinic's data. Everything a clinic owns carries its canary
(``CanaryAlder`` / ``CanaryBirch``) or is one of its recorded values (meeting id, join
link, passcode, patient address, Zoom and OAuth ids), so any answer can be scanned for
another clinic's data.

The web app is served with uvicorn on a real port, with the real start_url fetcher
(Zoom's start_url, minted by the simulator at request time) and a recording queue.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import redis
from cryptography.fernet import Fernet
from dramatiq.message import Message

from telemed.events.publish import Publisher
from telemed.foundation.tenancy import scoped
from telemed.settings import Settings, load_settings
from telemed.store import api_keys, appointments, attention, clinics, ingress_keys
from telemed.store.clinic_tables import IngressRefusal
from telemed.store.db import Database
from telemed.store.models import Appointment, Meeting, utcnow
from telemed.web.services import WebServices
from telemed.workers.context import WorkerContext
from telemed.workers.hosting.start_urls import fetch_start_url
from telemed.zoom import policy
from telemed.zoom.simulator import ZoomSimulator
from tests.support.contexts import cipher_database, worker_context
from tests.support.webapp import Recorder, running_app

A, B = "alder", "birch"
ROLES = ("admin", "booking", "doctor:D-1")
DEFAULT_INGRESS_SECRET = "matrix-default-ingress-secret-0123456789"
DEFAULT_ZOOM_SECRET = "matrix-default-zoom-secret-0123456789"
METRICS_TOKEN = "matrix-metrics-token-0123456789"
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@dataclass
class ClinicData:
    """One clinic's data, and what of it must never reach another clinic."""

    id: str
    mark: str  # the canary: in its clinic's name, its patients' and doctors' names, its failures
    appointment: str  # its appointment that no other clinic has an id for (the matrix's resource)
    other_doctor: str  # a doctor id only this clinic has (the doctor routes' resource)
    doctor: str = "D-1"  # the appointment's doctor: the same id in every clinic
    patient_id: str = ""
    patient_name: str = ""
    patient_email: str = ""
    meeting_id: int = 0
    join_url: str = ""
    passcode: str = ""
    zoom_account: tuple[str, str, str] = ("", "", "")  # account id, client id, client secret
    oauth_app: tuple[str, str] = ("", "")  # client id, client secret
    zoom_webhook_secret: str = ""
    webhook_url: str = ""
    webhook_secret: str = ""
    admin_email: str = ""
    ingress_key_id: str = ""
    ingress_secret: str = ""
    keys: dict[str, str] = field(default_factory=dict)  # role -> API key
    refused_event: str = ""  # the id of an event its key signed for another clinic (refused)

    @property
    def key(self) -> str:
        """The appointment's key inside telemed."""
        return scoped(self.id, self.appointment)

    @property
    def doctor_email(self) -> str:
        return f"d-1.{self.mark.lower()}@{self.id}.example"

    @property
    def other_doctor_email(self) -> str:
        return f"{self.other_doctor.lower()}.{self.mark.lower()}@{self.id}.example"

    def canaries(self) -> tuple[str, ...]:
        """Values of this clinic's data that no one of another clinic may ever be shown.
        (Ids a caller types, like ``APT-BIRCH``, are not among them: answers may echo what
        was asked.)"""
        return (self.mark, self.mark.lower(), self.mark.upper(), f"{self.id}/", str(self.meeting_id),
                self.join_url, self.passcode, self.patient_email, self.zoom_account[0], self.zoom_account[1],
                self.oauth_app[0], self.webhook_url, self.admin_email, self.ingress_key_id, self.refused_event)

    def secrets(self) -> tuple[str, ...]:
        """Values no answer may ever hold, to anyone."""
        return (self.zoom_account[2], self.oauth_app[1], self.zoom_webhook_secret, self.webhook_secret,
                self.ingress_secret, *self.keys.values())


@dataclass
class World:
    url: str
    settings: Settings
    database: Database
    database_url: str
    redis_url: str
    redis: redis.Redis
    namespace: str
    ctx: WorkerContext
    sim: ZoomSimulator
    recorder: Recorder
    services: WebServices
    key: str  # TELEMED_SECRET_KEYS
    clinics: dict[str, ClinicData] = field(default_factory=dict)
    admin_cookies: dict[str, httpx.Cookies] = field(default_factory=dict)  # clinic -> a signed-in session

    def env(self) -> dict[str, str]:
        """The environment the ``telemed`` command runs with in this deployment."""
        return {
            "TELEMED_DATABASE_URL": self.database_url, "TELEMED_REDIS_URL": self.redis_url,
            "TELEMED_REDIS_NAMESPACE": self.namespace, "TELEMED_SECRET_KEYS": self.key,
            "TELEMED_DATA_DIR": str(self.settings.data_dir), "TELEMED_PUBLIC_URL": self.url,
            "TELEMED_ZOOM_API_URL": self.sim.api_url, "TELEMED_ZOOM_OAUTH_URL": self.sim.oauth_url,
            "TELEMED_INGRESS_SECRET": DEFAULT_INGRESS_SECRET,
        }

    def dead_letter(self, clinic: ClinicData) -> str:
        """A fresh dead letter of the clinic (a sync of its appointment that gave up); its id."""
        message: Message[Any] = Message(queue_name="meetings", actor_name="sync_meeting", args=(clinic.key,), kwargs={},
                          options={"failure": f"PermanentFailure: Zoom refused {clinic.mark}'s meeting"})
        self.redis.zadd(f"{self.namespace}:meetings.XQ", {message.message_id: time.time() * 1000})
        self.redis.hset(f"{self.namespace}:meetings.XQ.msgs", message.message_id, message.encode())
        return message.message_id

    def is_dead(self, message_id: str) -> bool:
        return bool(self.redis.hexists(f"{self.namespace}:meetings.XQ.msgs", message_id))

    def drop_letter(self, message_id: str) -> None:
        self.redis.zrem(f"{self.namespace}:meetings.XQ", message_id)
        self.redis.hdel(f"{self.namespace}:meetings.XQ.msgs", message_id)

    def sign_in(self, clinic_id: str) -> httpx.Client:
        """A browser with a fresh admin session of the clinic's admin key (the caller closes it)."""
        client = httpx.Client(base_url=self.url, timeout=10)
        form = client.get("/admin/login")
        answer = client.post("/admin/login", data={"api_key": self.clinics[clinic_id].keys["admin"],
                                                   "csrf": csrf_of(form.text)})
        assert answer.status_code == 303, answer.text
        return client

    def fresh_session(self, clinic_id: str) -> httpx.Cookies:
        client = self.sign_in(clinic_id)
        try:
            return httpx.Cookies(client.cookies)
        finally:
            client.close()


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, html[:500]
    return match.group(1)


def _appointment(clinic: ClinicData, id: str, doctor: str, start: datetime, patient: str) -> Appointment:
    return Appointment(
        id=scoped(clinic.id, id), version=1, desired="scheduled", state="provisioned", synced_version=1,
        timezone="Europe/Berlin", doctor_id=scoped(clinic.id, doctor), patient_id=f"P-{id}", patient_name=patient,
        patient_email=f"{id.lower()}.{clinic.mark.lower()}@patients.example", last_event_id=scoped(clinic.id, f"evt-{id}"),
        start_time=start, duration_minutes=30, clinic_id=clinic.id, event_clinic_id=clinic.id,
        clinic_name=f"{clinic.mark} Clinic")


def _meeting(ctx: WorkerContext, appointment: Appointment, host: str) -> Meeting:
    assert appointment.start_time is not None
    body = policy.build_meeting_request(
        topic="Telemed video appointment", start_time=appointment.start_time, duration_minutes=30,
        timezone=appointment.timezone, passcode=policy.generate_passcode(), marker=policy.make_marker(appointment.id))
    created = ctx.account_client(appointment.clinic_id).create_meeting(host, body)
    return Meeting(appointment_id=appointment.id, zoom_meeting_id=int(created["id"]), host=host,
                   join_url=created["join_url"], passcode=created.get("password") or "",
                   start_time=appointment.start_time, duration_minutes=30, timezone=appointment.timezone,
                   synced_version=1, doctor_id=appointment.doctor_id)


def seed_clinic(database: Database, ctx: WorkerContext, sim: ZoomSimulator, clinic_id: str, mark: str) -> ClinicData:
    """A clinic with its own Zoom account and apps and every kind of data (see the module)."""
    tag = mark.lower()
    clinic = ClinicData(
        id=clinic_id, mark=mark, appointment=f"APT-{clinic_id.upper()}", other_doctor=f"DR-{clinic_id.upper()}",
        zoom_account=(f"acct-{tag}", f"client-{tag}", f"zoom-secret-{tag}-{uuid.uuid4().hex}"),
        oauth_app=(f"oauth-{tag}", f"oauth-secret-{tag}-{uuid.uuid4().hex}"),
        zoom_webhook_secret=f"zwh-secret-{tag}-{uuid.uuid4().hex}",
        webhook_url=f"https://hooks.{tag}.example/status", webhook_secret=f"wh-secret-{tag}-{uuid.uuid4().hex}",
        admin_email=f"admin@{tag}.example")
    sim.add_account(*clinic.zoom_account)
    sim.add_oauth_app(*clinic.oauth_app)
    start = utcnow().replace(microsecond=0) + timedelta(days=2)
    own = _appointment(clinic, clinic.appointment, clinic.doctor, start, f"Pat {mark}")
    same = _appointment(clinic, "APT-SAME", clinic.other_doctor, start + timedelta(hours=1), f"Same {mark}")
    clinic.patient_id, clinic.patient_name, clinic.patient_email = own.patient_id, own.patient_name, own.patient_email
    with database.session() as s:
        clinics.add_clinic(
            s, clinic_id, f"{mark} Clinic", zoom_account_id=clinic.zoom_account[0],
            zoom_client_id=clinic.zoom_account[1], zoom_client_secret=clinic.zoom_account[2],
            zoom_oauth_client_id=clinic.oauth_app[0], zoom_oauth_client_secret=clinic.oauth_app[1],
            zoom_webhook_secret=clinic.zoom_webhook_secret, webhook_url=clinic.webhook_url,
            webhook_secret=clinic.webhook_secret, admin_emails=[clinic.admin_email])
        info, clinic.ingress_secret = ingress_keys.add_key(s, clinic_id)
        clinic.ingress_key_id = info.key_id
        appointments.upsert_doctor(s, id=scoped(clinic_id, clinic.doctor), name=f"Dr D-1 {mark}",
                                   email=clinic.doctor_email, zoom_user=clinic.doctor_email, clinic_id=clinic_id)
        appointments.upsert_doctor(s, id=scoped(clinic_id, clinic.other_doctor), name=f"Dr Other {mark}",
                                   email=clinic.other_doctor_email, zoom_user=clinic.other_doctor_email,
                                   clinic_id=clinic_id)
        appointments.save(s, own, same)
        for role in ROLES:
            _, clinic.keys[role] = api_keys.create_key(s, role, label=f"{mark} {role}", clinic_id=clinic_id)
        clinic.refused_event = f"evt-refused-{tag}"
        s.add(IngressRefusal(signer_clinic_id=clinic_id, key_id=clinic.ingress_key_id, named_clinic_id="elsewhere",
                             event_id=clinic.refused_event, reason="names another clinic"))
    meeting = _meeting(ctx, own, clinic.doctor_email)
    clinic.meeting_id, clinic.join_url, clinic.passcode = meeting.zoom_meeting_id, meeting.join_url, meeting.passcode
    with database.session() as s:
        appointments.save(s, meeting)
        parked = appointments.get_appointment(s, same.id, for_update=True)
        assert parked is not None
        attention.mark_needs_attention(s, parked, f"Zoom refused the host of {mark}")
    return clinic


@contextmanager
def isolation_world(redis_url: str, database_url: str, tmp_path: Path) -> Iterator[World]:
    """The deployment of clinics A and B, served over HTTP; everything removed afterwards."""
    key = Fernet.generate_key().decode()
    namespace = f"t{uuid.uuid4().hex[:10]}"
    with ZoomSimulator() as sim:
        values: dict[str, Any] = dict(
            redis_url=redis_url, redis_namespace=namespace, database_url=database_url, secret_keys=key,
            data_dir=tmp_path / "data", zoom_api_url=sim.api_url, zoom_oauth_url=sim.oauth_url,
            ingress_secret=DEFAULT_INGRESS_SECRET, zoom_webhook_secret_token=DEFAULT_ZOOM_SECRET,
            metrics_token=METRICS_TOKEN)
        settings = load_settings(**values)
        database = cipher_database(database_url, [key])
        ctx = worker_context(settings, database)
        client = redis.Redis.from_url(redis_url)
        recorder = Recorder()

        def check_queue() -> None:
            client.ping()

        publisher = Publisher(database=database, enqueue=lambda event_id: recorder("process_event", event_id),
                              check_queue=check_queue)
        services = WebServices(settings=settings, database=database, redis=client, publisher=publisher,
                               enqueue=recorder, clinics=ctx.clinics,
                               start_url_fetcher=lambda appointment: fetch_start_url(ctx, appointment))
        try:
            with running_app(services) as url:
                # The OAuth callback and connect links need the public address: known now.
                services.settings = load_settings(**values, public_url=url)
                world = World(url, services.settings, database, database_url, redis_url, client, namespace, ctx,
                              sim, recorder, services, key)
                for clinic_id, mark in ((A, "CanaryAlder"), (B, "CanaryBirch")):
                    world.clinics[clinic_id] = seed_clinic(database, ctx, sim, clinic_id, mark)
                for clinic_id in world.clinics:
                    world.admin_cookies[clinic_id] = world.fresh_session(clinic_id)
                yield world
        finally:
            for leftover in client.scan_iter(match=f"{namespace}*", count=500):
                client.delete(leftover)
            client.close()
            database.dispose()


def seed_throwaway(world: World) -> ClinicData:
    """Another clinic seeded like A and B under a fresh id (for the command that deletes one)."""
    letters = "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:8])
    return seed_clinic(world.database, world.ctx, world.sim, f"gone-{letters}", f"CanaryGone{letters.capitalize()}")
