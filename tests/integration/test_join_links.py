"""``GET /join/{token}`` on a real server, with meetings made by sync_meeting in the Zoom
simulator: the patient's current personal link at click time, across a meeting Zoom lost
and a new registration; plain pages for cancelled, over, changed and unready appointments;
audited clicks; the token never in the access log, in any encoding; the patient's mail
carrying the /join/ link when TELEMED_PUBLIC_URL is set."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest
import redis
from cryptography.fernet import Fernet

from telemed.foundation import join_tokens
from telemed.logging import configure_logging, reset_logging
from telemed.store import appointments, registrations, states
from telemed.store.db import Database
from telemed.store.models import Appointment
from telemed.web.app import create_app
from telemed.workers.meetings.sync import sync_meeting
from tests.support.seeded_web import SeededWeb, seeded_web
from tests.support.webapp import settings_for, web_services
from tests.support.webserver import serve

pytestmark = pytest.mark.integration


@pytest.fixture
def web(database_url: str, redis_url: str, redis_namespace: str, zoom_sim: Any, tmp_path: Any) -> Iterator[SeededWeb]:
    with seeded_web(database_url, redis_url, redis_namespace, zoom_sim, tmp_path) as seeded:
        yield seeded


def _book(web: SeededWeb, appointment_id: str = "A-J", start: datetime | None = None) -> None:
    with web.database.session() as s:
        appointments.save(s, Appointment(
            id=appointment_id, version=1, desired=states.SCHEDULED, timezone="UTC", doctor_id="D-1",
            patient_id="P-J", patient_name="Grace Hopper", patient_email="grace@example.org", last_event_id="e1",
            start_time=start or datetime.now(UTC).replace(microsecond=0) + timedelta(days=2), duration_minutes=30))
    sync_meeting(web.context, appointment_id)


def _change(web: SeededWeb, appointment_id: str = "A-J", **fields: Any) -> None:
    with web.database.session() as s:
        appointment = appointments.get_appointment(s, appointment_id, for_update=True)
        assert appointment is not None
        appointment.version += 1
        for name, value in fields.items():
            setattr(appointment, name, value)
        appointments.save(s, appointment)


def _link(web: SeededWeb, appointment_id: str = "A-J", patient_id: str = "P-J") -> str:
    token = join_tokens.issue(web.settings.fernet_keys, appointment_id=appointment_id, patient_id=patient_id)
    return join_tokens.link_for(web.url, token)


def _open(url: str) -> httpx.Response:
    return httpx.get(url, follow_redirects=False, timeout=10)


def _registrant_link(web: SeededWeb, appointment_id: str = "A-J") -> str:
    with web.database.session() as s:
        meeting = appointments.live_meeting(s, appointment_id)
        assert meeting is not None and meeting.registrant_join_url
        return meeting.registrant_join_url


def _clicks(web: SeededWeb, appointment_id: str = "A-J") -> list[str]:
    with web.database.session() as s:
        return [c.outcome for c in registrations.join_clicks(s, appointment_id)]


def _page(response: httpx.Response, status: int, phrase: str) -> None:
    assert response.status_code == status, response.text[:200]
    assert "location" not in response.headers
    assert phrase in response.text and "zoom.us" not in response.text and "Traceback" not in response.text


def test_the_link_leads_to_the_patients_current_personal_link(web: SeededWeb, zoom_sim: Any) -> None:
    _book(web)
    first = _open(_link(web))
    assert first.status_code == 302 and first.headers["location"] == _registrant_link(web)
    assert first.headers["cache-control"] == "no-store"
    assert "zak=" not in first.headers["location"] and "tk=" in first.headers["location"]

    # Zoom lost the meeting; telemed re-creates it and registers the patient again: the same
    # /join/ link now leads to the new personal link, and the old one is dead in Zoom.
    old = first.headers["location"]
    with web.database.session() as s:
        meeting = appointments.live_meeting(s, "A-J")
        assert meeting is not None
    assert zoom_sim.state.delete_meeting(meeting.zoom_meeting_id)
    _change(web, start_time=meeting.start_time + timedelta(hours=1))
    for _ in range(3):
        if not sync_meeting(web.context, "A-J").resync:
            break
    again = _open(_link(web))
    assert again.status_code == 302 and again.headers["location"] == _registrant_link(web) != old
    assert zoom_sim.join_check(old)[0] is False and zoom_sim.join_check(again.headers["location"])[0] is True
    assert _clicks(web) == ["redirected", "redirected"]  # audited: time, appointment, outcome


def test_a_link_sent_to_an_earlier_patient_does_not_open_the_new_patients(web: SeededWeb) -> None:
    _book(web)
    old_link = _link(web)
    _change(web, patient_id="P-K", patient_name="Katherine Johnson", patient_email="katherine@example.org")
    sync_meeting(web.context, "A-J")
    _page(_open(old_link), 403, "no longer valid")
    new = _open(_link(web, patient_id="P-K"))
    assert new.status_code == 302 and new.headers["location"] == _registrant_link(web)


def test_cancelled_over_and_unready_get_plain_pages(web: SeededWeb) -> None:
    _book(web)
    _change(web, desired=states.CANCELLED)
    _page(_open(_link(web)), 410, "cancelled")
    _page(_open(_link(web, "A-unknown")), 410, "cancelled")
    _book(web, "A-OLD", start=datetime.now(UTC) - timedelta(hours=2))  # ended 90 minutes ago
    _page(_open(_link(web, "A-OLD")), 410, "over")
    _page(_open(_link(web, "A-P", "P-A-P")), 409, "try the link again")  # meeting not made yet
    assert _clicks(web) == ["cancelled"] and _clicks(web, "A-OLD") == ["over"]


def test_a_bad_link_gets_a_page_and_no_audit(web: SeededWeb) -> None:
    _book(web)
    url = _link(web)
    _page(_open(url[:-2] + ("AA" if not url.endswith("AA") else "BB")), 403, "not valid")
    _page(_open(f"{web.url}/join/garbage"), 403, "not valid")
    other = join_tokens.issue([Fernet.generate_key().decode()], appointment_id="A-J", patient_id="P-J")
    _page(_open(join_tokens.link_for(web.url, other)), 403, "not valid")
    assert _clicks(web) == []


def test_the_patient_mail_carries_the_join_link_with_a_public_url(
        database_url: str, redis_url: str, redis_namespace: str, zoom_sim: Any, tmp_path: Any) -> None:
    from sqlmodel import select

    from telemed.store.models import OutboxMessage
    from telemed.workers.delivery.relay import deliver_notification
    from tests.support.mail_scan import everything
    from tests.support.smtp import smtp_server

    with smtp_server() as server:
        with seeded_web(database_url, redis_url, redis_namespace, zoom_sim, tmp_path,
                        smtp_url=server.url()) as web:
            web.context.settings = web.context.settings.model_copy(update={"public_url": web.url})
            _book(web)
            with web.database.session() as s:
                ids = [r.id for r in s.exec(select(OutboxMessage).where(OutboxMessage.appointment_id == "A-J"))]
            for outbox_id in ids:
                deliver_notification(web.context, outbox_id)
            [patient_mail] = [m for m in server.messages if "grace@example.org" in str(m["To"])]
            text = everything(patient_mail)
            registrant = _registrant_link(web)
            assert "/join/" in text and registrant not in text and "zak=" not in text
            link = next(word for word in text.split() if "/join/" in word).strip("<>\"'")
            opened = _open(link)
            assert opened.status_code == 302 and opened.headers["location"] == registrant


# The access log --------------------------------------------------------------------------


def _encoded(text: str, times: int = 1) -> str:
    for _ in range(times):
        text = "".join(f"%{ord(c):02X}" for c in text)
    return text


@pytest.fixture
def log_buffer() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    configure_logging("json", "INFO", buffer, capture_uncaught=False)
    yield buffer
    reset_logging()


def test_join_tokens_never_reach_the_access_log(database: Database, redis_client: redis.Redis,
                                                redis_namespace: str, log_buffer: io.StringIO) -> None:
    settings = settings_for(redis_namespace)
    token = join_tokens.issue(settings.fernet_keys, appointment_id="A-CANARY", patient_id="P-CANARY")
    targets = [
        f"/join/{token}", f"/join/%65{token[1:]}", f"/join/{_encoded(token)}", f"/join/{_encoded(token, 2)}",
        f"/join%2F{token}", f"/%6AoIn%2f{token}", f"/{_encoded('join', 2)}%252F{_encoded(token, 2)}",
        f"/join/{token}?page=1",
    ]
    with serve(create_app(web_services(settings, database, redis_client)), access_log=True) as url:
        parts = urlsplit(url)
        for target in targets:
            with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
                sock.sendall(f"GET {target} HTTP/1.1\r\nHost: telemed\r\nConnection: close\r\n\r\n".encode())
                while sock.recv(65536):
                    pass
    log = log_buffer.getvalue()
    assert sum(1 for line in log.splitlines() if '"uvicorn.access"' in line) == len(targets), log
    assert "join/[REDACTED]" in log
    decoded = log
    for _ in range(8):
        decoded = unquote(decoded)
    assert token not in decoded and token.split(".")[-1] not in decoded, log
