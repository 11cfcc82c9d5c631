"""A pipeline for notification tests: a real worker process with the notification settings
a test asks for, a real webhook receiver, and (for signed start links) the real web app;
plus the canary scan of everything that was sent."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import redis

from telemed.events import signing
from telemed.samples import booking
from telemed.settings import load_settings
from telemed.store.models import OutboxMessage
from telemed.web.app import create_app
from telemed.web.services import WebServices
from telemed.workers.hosting.start_urls import fetch_start_url
from tests.support.contexts import cipher_database, worker_context
from tests.support.mail_scan import calendars, everything
from tests.support.pipeline import Pipeline
from tests.support.webapp import Recorder
from tests.support.webhook_receiver import WebhookReceiver, webhook_receiver
from tests.support.webserver import serve

WEBHOOK_SECRET = "booking-webhook-secret-3f9"
ADMIN = "ops@clinic.example"
START_LINK = re.compile(r"https?://[^\s\"<>]+/start/[A-Za-z0-9._-]+")


@dataclass
class Run:
    pipeline: Pipeline
    hooks: WebhookReceiver
    smtp: Any
    zoom_sim: Any
    web_url: str | None
    patients: dict[str, tuple[str, str]]  # appointment id -> (name, email)

    def publish(self, appointment_id: str, version: int, start: datetime, type: str = "appointment.booked",
                doctor: tuple[str, str] = ("D-1", "Dr. Ada Lovelace")) -> None:
        name = f"Canary{appointment_id.replace('-', '').lower()}patient Smith"
        event = booking(appointment_id, version, start, type=type, patient=name, doctor=doctor)
        self.patients[appointment_id] = (name, event["appointment"]["patient"]["email"])
        [result] = self.pipeline.publish([event])
        assert result.status == "accepted"

    def outbox(self, **match: Any) -> list[OutboxMessage]:
        return [m for m in self.pipeline.outbox() if all(getattr(m, k) == v for k, v in match.items())]


def _start_web(pipeline: Pipeline, settings_values: dict[str, Any]) -> Any:
    settings = load_settings(**settings_values)
    database = cipher_database(pipeline.database_url, [pipeline.secret_key])
    ctx = worker_context(settings, database)
    client = redis.Redis.from_url(pipeline.redis_url)
    services = WebServices(settings=settings, database=database, redis=client, publisher=None,  # type: ignore[arg-type]
                           enqueue=Recorder(), start_url_fetcher=lambda a: fetch_start_url(ctx, a),
                           clinics=ctx.clinics)
    return serve(create_app(services))


def run_factory(backend, zoom_sim, smtp, tmp_path: Path, redis_namespace: str) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """For a fixture: builds pipelines with the notification settings a test asks for,
    and tears all of them down afterwards."""
    started: list[Any] = []

    def make(*, public_url: bool = True, webhook: bool = True, **env: str) -> Run:
        redis_url, database_url = backend
        hooks_cm = webhook_receiver()
        hooks = hooks_cm.__enter__()
        started.append(hooks_cm)
        extra = {"TELEMED_ADMIN_EMAIL": ADMIN, "TELEMED_NOTIFICATION_RETRY_BASE_SECONDS": "0.3", **env}
        if webhook:
            extra.update(TELEMED_WEBHOOK_URL=hooks.url, TELEMED_WEBHOOK_SECRET=WEBHOOK_SECRET)
        pipeline = Pipeline(
            redis_url=redis_url, namespace=redis_namespace, database_url=database_url,
            zoom_api_url=zoom_sim.api_url, zoom_oauth_url=zoom_sim.oauth_url,
            zoom_credentials={"account_id": "test-account", "client_id": "test-client",
                              "client_secret": "test-secret"},
            smtp_url=smtp.url(), workdir=tmp_path, extra_env=extra,
        )
        web_url = None
        if public_url:
            web_cm = _start_web(pipeline, dict(
                redis_url=redis_url, redis_namespace=redis_namespace, database_url=database_url,
                secret_keys=pipeline.secret_key, data_dir=tmp_path / "web", zoom_api_url=zoom_sim.api_url,
                zoom_oauth_url=zoom_sim.oauth_url, zoom_account_id="test-account",
                zoom_client_id="test-client", zoom_client_secret="test-secret"))
            web_url = web_cm.__enter__()
            started.append(web_cm)
            pipeline.extra_env["TELEMED_PUBLIC_URL"] = web_url
        started.append(pipeline)
        pipeline.start_worker()
        return Run(pipeline, hooks, smtp, zoom_sim, web_url, {})

    yield make
    for thing in reversed(started):
        if isinstance(thing, Pipeline):
            thing.stop()
        else:
            thing.__exit__(None, None, None)
    client = redis.Redis.from_url(backend[0])
    for key in client.scan_iter(match=f"{redis_namespace}*", count=500):
        client.delete(key)
    client.close()


def soon(days: int = 3) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)


def canary_scan(run: Run, *, signed_links: bool) -> None:
    """No start link, ZAK or another patient's data where it does not belong."""
    zoom_secrets = run.zoom_sim.secrets_handed_out()
    start_urls = {s for s in zoom_secrets if "zak=" in s or "/s/" in s}
    zaks = {m.group(1) for s in start_urls for m in [re.search(r"zak=([^&\s]+)", s)] if m}
    assert start_urls or signed_links, "no start link was ever minted: the scan would prove little"
    host_only = start_urls | zaks

    def clean(text: str, where: str, *, allow_start: bool = False) -> None:
        if not allow_start:
            assert "zak=" not in text and "/s/" not in text, where
            assert not START_LINK.search(text), where
            for secret in host_only:
                assert secret not in text, where

    messages = run.smtp.messages
    assert messages, "nothing was mailed"
    for message in messages:
        text = everything(message)
        to = str(message["To"])
        where = f"mail {message['Message-ID']} to {to}"
        for cal in calendars(message):  # calendar entries never carry a start link, for anyone
            clean(cal.to_ical().decode(), where + " (.ics)")
        if ADMIN in to:
            clean(text, where)
            for name, email in run.patients.values():
                assert name not in text and email not in text, where
            continue
        owner = next((a for a, (_, email) in run.patients.items() if email in to), None)
        if owner is not None:  # a patient's mail: theirs alone, no host link of any kind
            clean(text, where)
            for other, (name, email) in run.patients.items():
                if other != owner:
                    assert name not in text and email not in text, where
            continue
        # A doctor's mail: no patient contact at all; a raw Zoom start link only without
        # signed links; only the patient of that appointment.
        appointment_id = str(message["Message-ID"]).strip().strip("<").split(".v")[0]
        clean(text, where, allow_start=True)
        if signed_links:
            assert "zak=" not in text and "/s/" not in text, where
        for other, (name, email) in run.patients.items():
            assert email not in text, where
            if other != appointment_id:
                assert name not in text, where
    for hook in run.hooks.received:
        body = hook.body.decode()
        clean(body, "webhook")
        for name, email in run.patients.values():
            assert name not in body and email not in body, "webhook"


def verified(hook: Any) -> dict[str, Any]:
    signing.verify(WEBHOOK_SECRET, hook.headers.get("X-Telemed-Timestamp"), hook.headers.get("X-Telemed-Signature"),
                   hook.body)
    return json.loads(hook.body)  # type: ignore[no-any-return]


def by_message_id(messages: list[EmailMessage], fragment: str) -> list[EmailMessage]:
    return [m for m in messages if fragment in str(m["Message-ID"])]
