"""Doctor OAuth over real HTTP: the web app under uvicorn, the Zoom simulator's consent
screen, a browser-like session following redirects; and the ``telemed doctors`` commands."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
import requests
from cryptography.fernet import Fernet
from sqlalchemy import text

from telemed.events.publish import Publisher
from telemed.foundation.cipher import Cipher
from telemed.foundation.connect_links import connect_url, make_connect_token
from telemed.foundation.tenancy import DEFAULT_CLINIC, ClinicProfile, StaticDirectory, ZoomApp
from telemed.settings import Settings, load_settings
from telemed.store import appointments, states, zoom_tokens
from telemed.store.db import Database
from telemed.store.models import Appointment
from telemed.web.app import create_app
from telemed.web.services import WebServices
from telemed.zoom.simulator import ZoomSimulator
from tests.support import openapi
from tests.support.contexts import clinics_of
from tests.support.webserver import serve

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
EMAIL = "ada@clinic.example"


@dataclass
class Site:
    url: str
    services: WebServices
    database: Database
    sim: ZoomSimulator
    key: str
    database_url: str
    queued: list[tuple[str, tuple[Any, ...]]]

    def link(self, doctor_id: str = "D-7", ttl: timedelta = timedelta(hours=1),
             now: datetime | None = None) -> str:
        return connect_url(self.url, make_connect_token([self.key], doctor_id, ttl, now))

    def token_row(self, doctor_id: str = "D-7") -> zoom_tokens.StoredGrant | None:
        with self.database.session() as session:
            return zoom_tokens.load_grant(session, doctor_id)


@pytest.fixture
def site(database_url: str, redis_url: str, redis_namespace: str) -> Iterator[Site]:
    key = Fernet.generate_key().decode()
    database = Database(database_url, cipher=Cipher([key]))
    with database.session() as session:
        appointments.upsert_doctor(session, id="D-7", name="Dr. Ada Lovelace", email=EMAIL, zoom_user=EMAIL)
    client = redis.Redis.from_url(redis_url)
    queued: list[tuple[str, tuple[Any, ...]]] = []
    with ZoomSimulator() as sim:
        sim.authorize_as(EMAIL)
        services = WebServices(
            settings=_settings(redis_namespace, key, sim, "http://127.0.0.1:1"), database=database, redis=client,
            publisher=Publisher(database=database, enqueue=lambda event_id: None),
            enqueue=lambda actor, *args: queued.append((actor, args)),
            clinics=StaticDirectory([ClinicProfile(DEFAULT_CLINIC, "default")]),
        )
        services.clinics = clinics_of(services.settings)
        with serve(create_app(services)) as url:
            services.settings = _settings(redis_namespace, key, sim, url)  # now the port is known
            yield Site(url, services, database, sim, key, database_url, queued)
    client.close()
    database.dispose()


def _settings(namespace: str, key: str, sim: ZoomSimulator, public_url: str, **extra: Any) -> Settings:
    return load_settings(
        redis_namespace=namespace, secret_keys=key, public_url=public_url, zoom_oauth_url=sim.oauth_url,
        zoom_api_url=sim.api_url, zoom_oauth_client_id=sim.oauth_client_id,
        zoom_oauth_client_secret=sim.oauth_client_secret, **extra,
    )


def start(site: Site, browser: requests.Session, link: str | None = None) -> dict[str, str]:
    """Open the connect link and follow it to Zoom's consent: the callback's query."""
    to_zoom = browser.get(link or site.link(), allow_redirects=False, timeout=10)
    assert to_zoom.status_code == 302, to_zoom.text
    to_us = browser.get(to_zoom.headers["Location"], allow_redirects=False, timeout=10)
    assert to_us.status_code == 302
    callback = to_us.headers["Location"]
    assert callback.startswith(f"{site.url}/oauth/zoom/callback?")
    return {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}


def finish(site: Site, browser: requests.Session, query: dict[str, str]) -> requests.Response:
    return browser.get(f"{site.url}/oauth/zoom/callback", params=query, allow_redirects=False, timeout=10)


def test_connect_end_to_end(site: Site) -> None:
    browser = requests.Session()
    answer = browser.get(site.link(), timeout=10)  # follows both redirects like a browser
    assert answer.status_code == 200 and "Your Zoom account is connected" in answer.text
    assert answer.headers["Cache-Control"] == "no-store" and answer.headers["Referrer-Policy"] == "no-referrer"
    grant = site.token_row()
    assert grant is not None and grant.status == "connected" and grant.version == 1
    assert grant.expires_at > datetime.now(UTC).timestamp() + 3000
    with site.database.session() as session:
        doctor = appointments.get_doctor(session, "D-7")
        assert doctor is not None and doctor.connection == "connected"
        raw = session.execute(text("select access_token, refresh_token from doctor_zoom_tokens")).one()
    assert grant.access_token not in raw[0] and grant.refresh_token not in raw[1]  # encrypted at rest
    for secret in (grant.access_token, grant.refresh_token):
        assert secret not in answer.text and secret not in str(answer.history[0].headers)
    # The token acts as the doctor who consented.
    created = requests.post(f"{site.sim.api_url}/users/me/meetings", json={"topic": "x"},
                            headers={"Authorization": f"Bearer {grant.access_token}"}, timeout=5)
    assert created.json()["host_email"] == EMAIL


def test_a_clinics_doctor_connects_through_the_clinics_own_app(site: Site) -> None:
    app = site.sim.add_oauth_app("clinic-b-oauth", "clinic-b-oauth-secret")
    clinic_b = ClinicProfile("clinic-b", "Clinic B", zoom_oauth=ZoomApp(app.client_id, app.client_secret))
    site.services.clinics = clinics_of(site.services.settings, clinic_b, ClinicProfile("clinic-c", "Clinic C"))
    with site.database.session() as session:
        for doctor in ("clinic-b/D-7", "clinic-c/D-7"):
            appointments.upsert_doctor(session, id=doctor, name="Dr. Ada Lovelace", email=EMAIL, zoom_user=EMAIL,
                                       clinic_id=doctor.split("/")[0])
    to_zoom = requests.get(site.link("clinic-b/D-7"), allow_redirects=False, timeout=10)
    query = {k: v[0] for k, v in parse_qs(urlsplit(to_zoom.headers["Location"]).query).items()}
    assert query["client_id"] == app.client_id  # B's app, not the deployment's
    assert query["redirect_uri"] == f"{site.url}/oauth/zoom/callback"  # one callback for every clinic
    browser = requests.Session()
    answer = browser.get(site.link("clinic-b/D-7"), timeout=10)
    assert answer.status_code == 200 and "Your Zoom account is connected" in answer.text
    grant = site.token_row("clinic-b/D-7")
    assert grant is not None and grant.status == "connected"
    assert site.token_row("D-7") is None  # the default clinic's D-7 is another doctor
    assert app.client_secret not in answer.text
    # A clinic without an OAuth app of its own: not configured (never the deployment's app).
    assert requests.get(site.link("clinic-c/D-7"), allow_redirects=False, timeout=10).status_code == 503


def test_the_redirect_to_zoom(site: Site) -> None:
    to_zoom = requests.get(site.link(), allow_redirects=False, timeout=10)
    location = urlsplit(to_zoom.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{site.sim.oauth_url}/authorize"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert openapi.schema_errors(openapi.OAUTH_AUTHORIZE_QUERY_SCHEMA, query) == []
    assert query["redirect_uri"] == f"{site.url}/oauth/zoom/callback"
    cookie = to_zoom.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/oauth/zoom" in cookie


def test_declined_consent_stores_nothing(site: Site) -> None:
    site.sim.authorize_as(EMAIL, approve=False)
    browser = requests.Session()
    query = start(site, browser)
    assert query.get("error") == "access_denied"
    answer = finish(site, browser, query)
    assert answer.status_code == 400 and "You declined the request in Zoom" in answer.text
    assert site.token_row() is None
    assert finish(site, browser, query).status_code == 400  # the state is spent


def test_replayed_or_expired_code(site: Site) -> None:
    browser = requests.Session()
    first = start(site, browser)
    assert finish(site, browser, first).status_code == 200
    assert finish(site, browser, first).status_code == 400  # same state again: refused before Zoom
    second = start(site, browser)
    replayed = finish(site, browser, {"state": second["state"], "code": first["code"]})
    assert replayed.status_code == 400 and "expired or was already used" in replayed.text
    assert site.token_row() is not None and site.token_row().version == 1  # type: ignore[union-attr]
    site.sim.state.oauth_book.code_lifetime_seconds = 0.01
    try:
        late = start(site, browser)
        threading_wait(0.05)
        assert finish(site, browser, late).status_code == 400
    finally:
        site.sim.state.oauth_book.code_lifetime_seconds = 300
    assert site.sim.stats()["counters"]["invalid_grant"] == 2
    assert site.token_row().version == 1  # type: ignore[union-attr]


def test_state_mismatch(site: Site) -> None:
    browser = requests.Session()
    query = start(site, browser)
    stranger = requests.Session()  # the answer lands in a browser that did not start it
    answer = finish(site, stranger, query)
    assert answer.status_code == 400 and "does not belong to a connection started in this browser" in answer.text
    assert finish(site, browser, query).status_code == 400  # and the state is now spent
    assert finish(site, browser, {"state": "made-up", "code": query["code"]}).status_code == 400
    assert finish(site, browser, {"code": query["code"]}).status_code == 400
    assert site.token_row() is None


def test_bad_links(site: Site) -> None:
    expired = site.link(now=datetime.now(UTC) - timedelta(days=8), ttl=timedelta(days=7))
    answer = requests.get(expired, allow_redirects=False, timeout=10)
    assert answer.status_code == 400 and "expired" in answer.text
    forged = connect_url(site.url, make_connect_token([Fernet.generate_key().decode()], "D-7", timedelta(hours=1)))
    for link in (forged, f"{site.url}/oauth/zoom/connect", f"{site.url}/oauth/zoom/connect?token=abc"):
        answer = requests.get(link, allow_redirects=False, timeout=10)
        assert answer.status_code == 400 and "not valid" in answer.text
    unknown = requests.get(site.link("D-404"), allow_redirects=False, timeout=10)
    assert unknown.status_code == 400
    site.services.settings = replace_settings(site, zoom_oauth_client_id=None)
    site.services.clinics = clinics_of(site.services.settings)  # the default clinic has no OAuth app now
    assert requests.get(site.link(), allow_redirects=False, timeout=10).status_code == 503


def test_reconnect_resumes_parked_appointments(site: Site) -> None:
    browser = requests.Session()
    assert browser.get(site.link(), timeout=10).status_code == 200
    with site.database.session() as session:
        zoom_tokens.mark_needs_reconnect(session, "D-7")
        session.add(Appointment(
            id="A-1", version=1, desired=states.SCHEDULED, timezone="UTC", doctor_id="D-7", patient_id="P-1",
            patient_name="Grace", patient_email="grace@example.org", last_event_id="e1",
            start_time=datetime.now(UTC) + timedelta(days=1), duration_minutes=30,
        ))
        session.flush()
        zoom_tokens.park_pending_appointments(session, "D-7", "doctor D-7 must reconnect")
    assert browser.get(site.link(), timeout=10).status_code == 200
    grant = site.token_row()
    assert grant is not None and grant.status == "connected" and grant.version == 2
    with site.database.session() as session:
        appointment = appointments.get_appointment(session, "A-1")
        assert appointment is not None and appointment.state == states.PENDING
    assert site.queued == [("sync_meeting", ("A-1",))]


def test_cli_connect_link_and_list(site: Site, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMED_")}
    env.update({
        "PYTHONPATH": str(REPO), "TELEMED_DATABASE_URL": site.database_url, "TELEMED_SECRET_KEYS": site.key,
        "TELEMED_PUBLIC_URL": site.url, "TELEMED_ZOOM_OAUTH_CLIENT_ID": site.sim.oauth_client_id,
        "TELEMED_ZOOM_OAUTH_CLIENT_SECRET": site.sim.oauth_client_secret, "TELEMED_DATA_DIR": str(tmp_path),
        "TELEMED_CONNECT_LINK_TTL_SECONDS": "3600",
    })

    def telemed(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "telemed", "doctors", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)

    made = telemed("connect-link", "D-7")
    assert made.returncode == 0, made.stderr
    link = made.stdout.strip()
    assert link.startswith(f"{site.url}/oauth/zoom/connect?token=") and "valid until" in made.stderr
    assert requests.get(link, timeout=10).status_code == 200  # the printed link works
    unknown = telemed("connect-link", "D-8")
    assert unknown.returncode == 2 and "not known yet" in unknown.stderr and "Traceback" not in unknown.stderr
    registered = telemed("connect-link", "D-8", "--name", "Dr. Grace", "--email", "grace@clinic.example")
    assert registered.returncode == 0
    # The event contract's field rules (events.rules) hold here too.
    for flag, name, email in (("--email", "Dr. Jörg", "jörg@clinic.example"), ("--name", "Dr.\u202eX", "x@clinic.example")):
        refused = telemed("connect-link", "D-9", "--name", name, "--email", email)
        assert refused.returncode == 2 and flag in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
    assert telemed("connect-link", "D-9", "--name", "Dr. Jörg", "--email", "jorg@bücher.example").returncode == 0
    with site.database.session() as session:
        doctor = appointments.get_doctor(session, "D-9")
        assert doctor is not None and doctor.email == doctor.zoom_user == "jorg@xn--bcher-kva.example"
    listed = telemed("list")
    assert listed.returncode == 0
    rows = {line.split("│")[1].strip(): line for line in listed.stdout.splitlines() if line.count("│") > 3}
    assert "connected" in rows["D-7"] and "none" in rows["D-8"]
    env.pop("TELEMED_PUBLIC_URL")
    missing = telemed("connect-link", "D-7")
    assert missing.returncode == 2 and "TELEMED_PUBLIC_URL" in missing.stderr


def replace_settings(site: Site, **changes: Any) -> Settings:
    values = site.services.settings.model_dump()
    values.update(changes)
    return Settings(**values)


def threading_wait(seconds: float) -> None:
    import threading

    threading.Event().wait(seconds)

