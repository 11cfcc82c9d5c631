"""Two clinics, each with its own Zoom account in the simulator, its own sender, webhook and
admins: the pipeline's actors run in this process on a stub broker, over the real store
and Redis, the Zoom simulator over HTTP, aiosmtpd and a real webhook receiver.

- each clinic's meetings are created under its own Zoom account (the simulator's record);
- mail comes from each clinic's sender; B's webhook is signed with B's secret and shows
  B's own ids; A, without a webhook URL, is sent none;
- A's app revoked: A's appointments are parked and A's admins get exactly one alert,
  while B's bookings are provisioned and mailed; fixing A's credentials resumes A;
- pacer scopes and daily-quota keys are per Zoom account;
- canary: A's Zoom secret appears in no log line and no mail.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import dramatiq
import pytest
import redis
import requests
from cryptography.fernet import Fernet
from dramatiq.brokers.stub import StubBroker
from sqlmodel import select

from telemed.events import signing
from telemed.events.publish import Publisher
from telemed.foundation.tenancy import ClinicProfile, StaticDirectory, ZoomApp
from telemed.logging import configure_logging, reset_logging
from telemed.samples import booking
from telemed.settings import default_profile, load_settings
from telemed.store import appointments, notifications, operations, states
from telemed.store.models import Appointment, InboxEvent, OutboxMessage
from telemed.workers.actors import declare_actors
from telemed.workers.context import WorkerContext
from telemed.workers.hosting.hosts import host_quota_key
from telemed.workers.meetings.app_failures import resume_fixed_apps_job
from telemed.workers.queue.log_context import install_log_context
from telemed.workers.queue.work_queue import WorkQueue
from telemed.zoom import webhooks
from telemed.zoom.client import MEDIUM
from telemed.zoom.simulator import ZoomSimulator
from tests.support.contexts import cipher_database, worker_context
from tests.support.smtp import SmtpTestServer, smtp_server
from tests.support.webapp import ZOOM_SECRET_TOKEN, Recorder, running_app, settings_for, web_services
from tests.support.webhook_receiver import WebhookReceiver, webhook_receiver

pytestmark = pytest.mark.integration

A, B = "clinic-a", "clinic-b"
# Canary secrets: a leak of either anywhere it must not be fails the test.
A_SECRET = "CANARYclientSecretClinicA-7f3e"
B_SECRET = "b-zoom-app-secret-0c41"
B_HOOK_SECRET = "b-webhook-secret-93d2"
HOST = "d-1@clinic.example"  # the same doctor e-mail in both clinics' Zoom accounts


@dataclass
class Clinics:
    ctx: WorkerContext
    sim: ZoomSimulator
    smtp: SmtpTestServer
    hooks: WebhookReceiver
    publisher: Publisher
    worker: dramatiq.Worker
    logs: io.StringIO
    profiles: dict[str, ClinicProfile]

    def book(self, clinic: str, appointment_id: str, *, hours: int = 48) -> None:
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=hours)
        result = self.publisher.publish(booking(appointment_id, 1, start, doctor=("D-1", "Dr. Ada")), clinic)
        assert result.status == "accepted"

    def settle(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._settled():
                return
            time.sleep(0.1)
        raise AssertionError(f"the pipeline did not settle\n{self.logs.getvalue()[-4000:]}")

    def _settled(self) -> bool:
        with self.ctx.database.session() as s:
            if s.exec(select(InboxEvent).where(InboxEvent.status == "pending")).first():
                return False
            for appointment in s.exec(select(Appointment)):
                if appointment.state != states.NEEDS_ATTENTION and appointment.synced_version < appointment.version:
                    return False
            return s.exec(select(OutboxMessage).where(OutboxMessage.status == "pending")).first() is None

    def appointment(self, key: str) -> Appointment:
        with self.ctx.database.session() as s:
            found = s.get(Appointment, key)
        assert found is not None
        return found

    def mails_to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.smtp.messages if address in str(m["To"])]

    def set_profile(self, profile: ClinicProfile) -> None:
        """The clinic's profile changes (as ``telemed clinics update`` would do)."""
        self.profiles[profile.clinic_id] = profile
        self.ctx.clinics = StaticDirectory(list(self.profiles.values()))


@pytest.fixture
def clinics(database_url: str, redis_url: str, redis_namespace: str, tmp_path: Path,
            shared_sim: ZoomSimulator) -> Iterator[Clinics]:
    sim = shared_sim
    sim.reset()
    sim.rate_limits, sim.daily_limit = {}, None
    sim.add_account("acct-clinic-a", "a-client", A_SECRET)
    sim.add_account("acct-clinic-b", "b-client", B_SECRET)
    key = Fernet.generate_key().decode()
    database = cipher_database(database_url, [key])
    logs = io.StringIO()
    configure_logging("json", "DEBUG", logs, capture_uncaught=False)
    with smtp_server() as smtp, webhook_receiver() as hooks:
        settings = load_settings(
            redis_url=redis_url, redis_namespace=redis_namespace, database_url=database_url, secret_keys=key,
            data_dir=tmp_path, smtp_url=smtp.url(), zoom_api_url=sim.api_url, zoom_oauth_url=sim.oauth_url,
            zoom_account_id=sim.account_id, zoom_client_id=sim.client_id, zoom_client_secret=sim.client_secret,
            mail_from="telemed <no-reply@deploy.example>", admin_email="root@deploy.example",
            notification_retry_base_seconds=0.2,
        )
        profiles = {
            "default": default_profile(settings),
            A: ClinicProfile(A, "Clinic A", zoom_account=ZoomApp("a-client", A_SECRET, "acct-clinic-a"),
                             mail_from="desk@clinic-a.example", mail_display_name="Clinic A",
                             admin_emails=("admin@clinic-a.example",)),
            B: ClinicProfile(B, "Clinic B", zoom_account=ZoomApp("b-client", B_SECRET, "acct-clinic-b"),
                             mail_from="desk@clinic-b.example", mail_display_name="Clinic B Telehealth",
                             mail_reply_to="frontdesk@clinic-b.example", webhook_url=hooks.url,
                             webhook_secret=B_HOOK_SECRET,
                             admin_emails=("admin@clinic-b.example", "ops@clinic-b.example")),
        }
        broker = StubBroker()
        install_log_context(broker)
        broker.emit_after("process_boot")
        queue = WorkQueue(broker)
        ctx = worker_context(settings, database, queue=queue, clinics=StaticDirectory(list(profiles.values())))
        declare_actors(broker, lambda: ctx)
        worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=4)
        worker.start()
        publisher = Publisher(database=database, enqueue=queue.process_event)
        try:
            yield Clinics(ctx, sim, smtp, hooks, publisher, worker, logs, profiles)
        finally:
            worker.stop()
            broker.close()
            reset_logging()
            ctx.redis.close()
            database.dispose()


def _from(message: EmailMessage) -> str:
    return str(message["From"])


def test_each_clinic_uses_its_own_zoom_account_sender_and_webhook(clinics: Clinics) -> None:
    clinics.book(A, "A-1")
    clinics.book(B, "B-1")
    clinics.book(B, "A-1")  # the same booking-system id in clinic B: another appointment
    clinics.settle()
    for key in ("clinic-a/A-1", "clinic-b/B-1", "clinic-b/A-1"):
        assert clinics.appointment(key).state == states.PROVISIONED

    # Zoom: each clinic's meetings in its own account, counted there.
    sim = clinics.sim
    assert len(sim.meetings(account="acct-clinic-a")) == 1
    assert len(sim.meetings(account="acct-clinic-b")) == 2
    assert sim.meetings(account=sim.account_id) == []  # never the deployment's account
    stats = sim.account_stats()
    assert stats["acct-clinic-a"]["meetings.created"] == 1 and stats["acct-clinic-b"]["meetings.created"] == 2
    assert {g["account"] for g in sim.grant_log("account")} == {"acct-clinic-a", "acct-clinic-b"}

    # Mail: each clinic's sender, display name and Reply-To.
    b_patient = clinics.mails_to("grace.b-1@example.org")
    assert b_patient and all(_from(m) == "Clinic B Telehealth <desk@clinic-b.example>" for m in b_patient)
    assert all(str(m["Reply-To"]) == "frontdesk@clinic-b.example" for m in b_patient)
    a_patient = [m for m in clinics.smtp.messages if _from(m) == "Clinic A <desk@clinic-a.example>"]
    assert len(a_patient) == 2 and all(m["Reply-To"] is None for m in a_patient)  # A's patient and doctor
    assert len(clinics.smtp.messages) == 6  # patient and doctor of three appointments

    # Webhook: B's, signed with B's secret, in B's own ids; A has no webhook URL: none sent.
    hooks = clinics.hooks.wait_for(2)
    payloads = []
    for hook in hooks:
        headers = {k.lower(): v for k, v in hook.headers.items()}
        signing.verify(B_HOOK_SECRET.encode(), headers["x-telemed-timestamp"], headers["x-telemed-signature"],
                       hook.body, tolerance_seconds=300)
        payloads.append(json.loads(hook.body))
    assert sorted(p["appointment"]["id"] for p in payloads) == ["A-1", "B-1"]
    assert {p["clinic_id"] for p in payloads} == {B}
    assert all("clinic-b/" not in hook.body.decode() for hook in hooks)  # never a scoped key
    assert sorted(p["delivery_id"] for p in payloads) == ["clinic-b:A-1.v1.invite", "clinic-b:B-1.v1.invite"]
    time.sleep(0.3)
    assert len(clinics.hooks.received) == 2

    # Pacer and quota: per Zoom account.
    limiter = clinics.ctx.rate_limiter
    a_scope, b_scope = clinics.profiles[A].zoom_account_scope, clinics.profiles[B].zoom_account_scope
    assert (a_scope, b_scope) == ("account:acct-clinic-a", "account:acct-clinic-b")
    assert limiter.keys(a_scope, MEDIUM) != limiter.keys(b_scope, MEDIUM)
    quota = clinics.ctx.daily_quota
    a_key, b_key = host_quota_key(clinics.ctx, "clinic-a/D-1", HOST), host_quota_key(clinics.ctx, "clinic-b/D-1", HOST)
    assert a_key != b_key and (quota.used(a_key), quota.used(b_key)) == (1, 2)

    # Logs name the clinic of the work they are about.
    lines = [json.loads(line) for line in clinics.logs.getvalue().splitlines() if line.startswith("{")]
    synced = [line for line in lines if line.get("event") == "sync recorded"]
    assert {(line["appointment_id"], line["clinic_id"]) for line in synced} >= {
        ("clinic-a/A-1", A), ("clinic-b/B-1", B), ("clinic-b/A-1", B)}
    sent = [line for line in lines if line.get("event") == "notification sent"]
    assert {line["clinic_id"] for line in sent} == {A, B}


def test_a_revoked_app_parks_only_its_clinic_with_one_alert_and_a_fix_resumes_it(clinics: Clinics) -> None:
    clinics.book(A, "A-1")
    clinics.book(B, "B-1")
    clinics.settle()
    mails_before = len(clinics.smtp.messages)

    clinics.sim.revoke_app("a-client")  # A's admin removed the app in Zoom's Marketplace
    for appointment_id in ("A-2", "A-3", "A-4", "A-5"):
        clinics.book(A, appointment_id)
    clinics.book(B, "B-2")
    clinics.settle()

    for appointment_id in ("A-2", "A-3", "A-4", "A-5"):
        parked = clinics.appointment(f"clinic-a/{appointment_id}")
        assert parked.state == states.NEEDS_ATTENTION
        reason = parked.attention_reason or ""
        assert reason.startswith("the Zoom account app of clinic 'clinic-a' (client id a-client) was refused by Zoom")
        assert A_SECRET not in reason
    assert clinics.appointment("clinic-a/A-1").state == states.PROVISIONED  # made before: untouched
    assert clinics.appointment("clinic-b/B-2").state == states.PROVISIONED  # B goes on

    with clinics.ctx.database.session() as s:
        alerts = notifications.alerts(s)
    assert [(a.kind, a.clinic_id) for a in alerts] == [("zoom_app", A)]  # exactly one, A's
    admin_mails = clinics.mails_to("admin@clinic-a.example")
    assert len(admin_mails) == 1 and _from(admin_mails[0]) == "Clinic A <desk@clinic-a.example>"
    body = admin_mails[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "client id a-client" in body and "clinic-a/" not in body
    assert clinics.mails_to("root@deploy.example") == [] and clinics.mails_to("admin@clinic-b.example") == []
    b2 = clinics.mails_to("grace.b-2@example.org")
    assert len(b2) == 1 and _from(b2[0]) == "Clinic B Telehealth <desk@clinic-b.example>"
    assert len(clinics.smtp.messages) == mails_before + 1 + 2  # A's one alert, B-2's patient and doctor
    # The breaker: Zoom's token endpoint was asked about A's revoked app once, not per booking.
    refused = [r for r in clinics.sim.requests(path_prefix="/oauth/token") if r["status"] == 401]
    assert len(refused) == 1

    # A's admin puts a new app's credentials in (the profile changes): A resumes.
    clinics.sim.add_account("acct-clinic-a", "a-client-2", "a-secret-2")
    clinics.set_profile(replace(clinics.profiles[A], zoom_account=ZoomApp("a-client-2", "a-secret-2", "acct-clinic-a")))
    assert resume_fixed_apps_job(clinics.ctx) == {"clinics_resumed": 1, "appointments_resumed": 4}
    clinics.settle()
    for appointment_id in ("A-2", "A-3", "A-4", "A-5"):
        assert clinics.appointment(f"clinic-a/{appointment_id}").state == states.PROVISIONED
    assert len(clinics.sim.meetings(account="acct-clinic-a")) == 5
    assert resume_fixed_apps_job(clinics.ctx) == {"clinics_resumed": 0, "appointments_resumed": 0}

    # Canary: A's secret in no log line and no mail (B's least of all). The logs did see it all.
    parked_lines = [json.loads(line) for line in clinics.logs.getvalue().splitlines()
                    if "a clinic-wide cause" in line]
    assert {line["clinic_id"] for line in parked_lines} == {A} and len(parked_lines) == 4
    everything = clinics.logs.getvalue() + "".join(m.as_string() for m in clinics.smtp.messages)
    assert A_SECRET not in everything and B_SECRET not in everything and B_HOOK_SECRET not in everything
    for hook in clinics.hooks.received:
        assert A_SECRET.encode() not in hook.body and b"clinic-a" not in hook.body


def test_a_clinic_without_an_app_parks_once_and_resumes_when_configured(clinics: Clinics) -> None:
    clinics.set_profile(replace(clinics.profiles[A], zoom_account=None))
    clinics.book(A, "A-1")
    clinics.book(A, "A-2")
    clinics.book(B, "B-1")
    clinics.settle()
    for appointment_id in ("A-1", "A-2"):
        reason = clinics.appointment(f"clinic-a/{appointment_id}").attention_reason or ""
        assert reason.startswith("the Zoom account app of clinic 'clinic-a' is not configured")
    assert clinics.appointment("clinic-b/B-1").state == states.PROVISIONED
    assert len(clinics.mails_to("admin@clinic-a.example")) == 1
    assert resume_fixed_apps_job(clinics.ctx)["appointments_resumed"] == 0  # still nothing to try
    assert clinics.sim.requests(path_prefix="/v2/users/d-1%40clinic.example") != []  # B's only
    assert clinics.sim.meetings(account="acct-clinic-a") == []

    clinics.set_profile(replace(clinics.profiles[A], zoom_account=ZoomApp("a-client", A_SECRET, "acct-clinic-a")))
    assert resume_fixed_apps_job(clinics.ctx)["appointments_resumed"] == 2
    clinics.settle()
    assert len(clinics.sim.meetings(account="acct-clinic-a")) == 2


def test_a_reactivated_app_is_found_by_the_probe(clinics: Clinics, monkeypatch: pytest.MonkeyPatch) -> None:
    from telemed.workers.meetings import app_failures

    clinics.sim.revoke_app("a-client")
    clinics.book(A, "A-1")
    clinics.settle()
    assert clinics.appointment("clinic-a/A-1").state == states.NEEDS_ATTENTION
    # The same credentials: not retried before the probe interval...
    assert resume_fixed_apps_job(clinics.ctx)["appointments_resumed"] == 0
    # ...then a probe asks Zoom once; still refused: nothing resumes, no new alert.
    monkeypatch.setattr(app_failures, "PROBE_SECONDS", 0.0)
    assert resume_fixed_apps_job(clinics.ctx)["appointments_resumed"] == 0
    # Reactivated in the Marketplace (the simulator: the same app again).
    clinics.sim.add_account("acct-clinic-a", "a-client", A_SECRET)
    assert resume_fixed_apps_job(clinics.ctx)["appointments_resumed"] == 1
    clinics.settle()
    assert clinics.appointment("clinic-a/A-1").state == states.PROVISIONED
    assert len(clinics.mails_to("admin@clinic-a.example")) == 1



# Zoom's webhooks, one endpoint per clinic ------------------------------------------------

B_ZOOM_HOOK = "b-zoom-webhook-token-51aa"


def _zoom_post(url: str, path: str, secret: str, body: dict[str, object]) -> requests.Response:
    raw = json.dumps(body).encode()
    ts = str(int(time.time()))
    return requests.post(f"{url}{path}", data=raw, timeout=10, headers={
        "x-zm-request-timestamp": ts, "x-zm-signature": webhooks.zoom_signature(secret, ts, raw),
        "content-type": "application/json"})


def _started(meeting_id: int) -> dict[str, object]:
    return {"event": "meeting.started", "event_ts": int(time.time() * 1000),
            "payload": {"account_id": "acct", "object": {"id": meeting_id, "host_id": "h-1"}}}


def test_each_clinics_zoom_webhook_is_verified_with_its_secret_and_touches_its_meetings_only(
        clinics: Clinics, redis_url: str) -> None:
    clinics.set_profile(replace(clinics.profiles[B], zoom_webhook_secret=B_ZOOM_HOOK))
    clinics.set_profile(replace(clinics.profiles["default"], zoom_webhook_secret=ZOOM_SECRET_TOKEN))
    clinics.book(A, "A-1")
    clinics.book(B, "B-1")
    clinics.settle()
    with clinics.ctx.database.session() as s:
        meeting_a = appointments.get_meeting(s, "clinic-a/A-1")
        meeting_b = appointments.get_meeting(s, "clinic-b/B-1")
    assert meeting_a is not None and meeting_b is not None
    hooks_before = len(clinics.hooks.received)

    client = redis.Redis.from_url(redis_url)
    recorder = Recorder(forward=clinics.ctx.queue.send)
    services = web_services(settings_for(clinics.ctx.settings.redis_namespace), clinics.ctx.database, client,
                            recorder)
    services.clinics = clinics.ctx.clinics
    try:
        with running_app(services) as url:
            # Signed with another secret (the deployment's, A's app's): refused.
            assert _zoom_post(url, "/zoom/webhook/clinic-b", ZOOM_SECRET_TOKEN,
                              _started(meeting_b.zoom_meeting_id)).status_code == 401
            # A clinic without a webhook secret, an unknown clinic, a malformed id.
            assert _zoom_post(url, "/zoom/webhook/clinic-a", B_ZOOM_HOOK, _started(1)).status_code == 503
            assert _zoom_post(url, "/zoom/webhook/clinic-zz", B_ZOOM_HOOK, _started(1)).status_code == 404
            assert _zoom_post(url, "/zoom/webhook/Not_A_Clinic", B_ZOOM_HOOK, _started(1)).status_code == 404
            # Zoom's URL check is answered with B's secret.
            challenge = _zoom_post(url, "/zoom/webhook/clinic-b", B_ZOOM_HOOK, {
                "event": "endpoint.url_validation", "payload": {"plainToken": "abc"}}).json()
            assert challenge["encryptedToken"] == webhooks.encrypted_token(B_ZOOM_HOOK, "abc")

            # B's own meeting: accepted and acted on.
            answer = _zoom_post(url, "/zoom/webhook/clinic-b", B_ZOOM_HOOK, _started(meeting_b.zoom_meeting_id))
            assert answer.json() == {"status": "accepted"}
            assert recorder.clinics == [B]  # queued as B's work: through B's gate
            # B's secret naming A's meeting, and the default endpoint naming B's: stored, never acted on.
            assert _zoom_post(url, "/zoom/webhook/clinic-b", B_ZOOM_HOOK,
                              _started(meeting_a.zoom_meeting_id)).json() == {"status": "accepted"}
            # The default clinic's endpoint (signed with TELEMED_ZOOM_WEBHOOK_SECRET_TOKEN) naming B's meeting.
            other = _started(meeting_b.zoom_meeting_id)
            other["event_ts"] = 1  # not the bytes of B's own notification
            assert _zoom_post(url, "/zoom/webhook", ZOOM_SECRET_TOKEN, other).json() == {"status": "accepted"}
            clinics.settle()
    finally:
        client.close()
    assert clinics.appointment("clinic-b/B-1").state == states.IN_PROGRESS
    assert clinics.appointment("clinic-a/A-1").state == states.PROVISIONED
    with clinics.ctx.database.session() as s:
        notes = sorted(r.note or "" for r in s.exec(select(operations.ZoomWebhookReceipt)))
    assert notes.count("ignored: not a meeting of this clinic") == 2  # B naming A's, the default naming B's
    [started] = [json.loads(h.body) for h in clinics.hooks.wait_for(hooks_before + 1)[hooks_before:]]
    assert (started["event"], started["appointment"]["id"], started["clinic_id"]) == ("started", "B-1", B)


# Doctors who connect their own Zoom, through their clinic's OAuth app ---------------------


def test_a_doctor_connects_and_refreshes_through_the_clinics_own_oauth_app(clinics: Clinics) -> None:
    from datetime import timedelta as span

    from telemed.store import zoom_tokens
    from telemed.workers.hosting.token_refresher import refresh_tokens_job
    from telemed.zoom.simulator.connect import connect_doctor

    app = clinics.sim.add_oauth_app("clinic-b-oauth", "clinic-b-oauth-secret")
    clinics.set_profile(replace(clinics.profiles[B], zoom_oauth=ZoomApp(app.client_id, app.client_secret)))
    connect_doctor(clinics.ctx.database, clinics.sim, "clinic-b/D-1", HOST, app=(app.client_id, app.client_secret))
    clinics.book(B, "B-1")
    clinics.settle()
    with clinics.ctx.database.session() as s:
        meeting = appointments.get_meeting(s, "clinic-b/B-1")
    assert meeting is not None and meeting.host == "me"
    assert [m["account"] for m in clinics.sim.meetings()] == [f"user:{HOST}"]  # the doctor's own account
    with clinics.ctx.database.session() as s:  # as if the hour-long token had been idle
        row = s.get(zoom_tokens.DoctorZoomToken, "clinic-b/D-1")
        assert row is not None
        row.expires_at = datetime.now(UTC) + span(minutes=1)
        s.add(row)
    # Refreshed through B's app: the simulator refuses another app's refresh token.
    assert refresh_tokens_job(clinics.ctx)["tokens_refreshed"] == 1
    with clinics.ctx.database.session() as s:
        grant = zoom_tokens.load_grant(s, "clinic-b/D-1")
    assert grant is not None and grant.status == "connected" and grant.version == 2
    # A clinic without an OAuth app has nothing to refresh through: skipped, not revoked.
    clinics.set_profile(replace(clinics.profiles[B], zoom_oauth=None))
    with clinics.ctx.database.session() as s:
        row = s.get(zoom_tokens.DoctorZoomToken, "clinic-b/D-1")
        assert row is not None
        row.expires_at = datetime.now(UTC) + span(minutes=1)
        s.add(row)
    assert refresh_tokens_job(clinics.ctx) == {"tokens_refreshed": 0, "tokens_revoked": 0, "token_refresh_failed": 0}


# Reminders and admins per clinic -----------------------------------------------------------


def test_each_clinic_is_reminded_at_its_own_offsets(clinics: Clinics) -> None:
    from telemed.store import outbox
    from telemed.workers.delivery.reminders import run_reminders

    clinics.set_profile(replace(clinics.profiles[B], reminder_offsets="2h"))  # A: the deployment's 24h,15m
    clinics.book(A, "A-1", hours=3)
    clinics.book(B, "B-1", hours=3)
    clinics.settle()
    start = clinics.appointment("clinic-b/B-1").start_time
    assert start is not None
    queued: list[tuple[int, str]] = []
    report = run_reminders(clinics.ctx, lambda outbox_id, clinic: queued.append((outbox_id, clinic)),
                           now=start - timedelta(hours=2) + timedelta(seconds=30))
    with clinics.ctx.database.session() as s:
        rows = {key: [m for m in outbox.messages_for(s, key) if m.kind.startswith("reminder")]
                for key in ("clinic-a/A-1", "clinic-b/B-1")}
    kinds = {key: sorted((m.role, m.kind) for m in found) for key, found in rows.items()}
    assert kinds == {"clinic-a/A-1": [], "clinic-b/B-1": [("doctor", "reminder-2h"), ("patient", "reminder-2h")]}
    assert report.queued == 2 and report.skipped == 2  # A's 24h reminders: told after their moment
    # Each queued through the gate of the clinic it belongs to.
    assert sorted(queued) == sorted((m.id, B) for m in rows["clinic-b/B-1"])


def test_a_clinic_without_admins_records_its_alert_and_mails_nobody(clinics: Clinics) -> None:
    clinics.set_profile(replace(clinics.profiles[A], admin_emails=(), zoom_account=None))
    clinics.book(A, "A-1")
    clinics.settle()
    with clinics.ctx.database.session() as s:
        [alert] = notifications.alerts(s, clinic_id=A)
        [row] = [m for m in s.exec(select(OutboxMessage)) if m.role == "admin"]
    assert alert.kind == "zoom_app" and (row.status, row.last_error) == ("skipped", "the clinic has no admin e-mail")
    assert clinics.smtp.messages == []  # not the deployment's admin, not anyone's
