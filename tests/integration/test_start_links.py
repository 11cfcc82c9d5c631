"""``GET /start/{token}`` on a real server: a fresh start_url and an audit row for the
assigned doctor; a clear page and no redirect for anything else."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from telemed.foundation import start_tokens
from telemed.store import appointments, notifications
from tests.support.seeded_web import SeededWeb, seeded_web

pytestmark = pytest.mark.integration


@pytest.fixture
def web(database_url: str, redis_url: str, redis_namespace: str, zoom_sim: Any, tmp_path: Any) -> Iterator[SeededWeb]:
    with seeded_web(database_url, redis_url, redis_namespace, zoom_sim, tmp_path) as seeded:
        yield seeded


def link(web: SeededWeb, appointment_id: str = "A-1", doctor_id: str = "D-1",
         expires_at: datetime | None = None, keys: list[str] | None = None) -> str:
    token = start_tokens.issue(keys or web.settings.fernet_keys, appointment_id=appointment_id,
                               doctor_id=doctor_id,
                               expires_at=expires_at or datetime.now(UTC) + timedelta(days=3))
    return start_tokens.link_for(web.url, token)


def open_link(url: str) -> httpx.Response:
    return httpx.get(url, follow_redirects=False, timeout=10)


def audits(web: SeededWeb) -> list[notifications.StartLinkAudit]:
    with web.database.session() as s:
        return notifications.disclosures(s)


def test_the_assigned_doctor_is_redirected_to_a_fresh_start_url(web: SeededWeb, zoom_sim: Any) -> None:
    url = link(web)
    first, second = open_link(url), open_link(url)
    for response in (first, second):
        assert response.status_code == 302
        assert "zak=" in response.headers["location"] and "/s/" in response.headers["location"]
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert first.headers["location"] != second.headers["location"]  # minted at each click
    handed_out = zoom_sim.secrets_handed_out()
    assert {first.headers["location"], second.headers["location"]} <= handed_out  # straight from Zoom
    rows = audits(web)
    assert [(a.appointment_id, a.doctor_id, a.principal, a.via) for a in rows] == [
        ("A-1", "D-1", "doctor:D-1 clinic:default", "start_link")] * 2
    with web.database.session() as s:  # who, when, which appointment; no URL anywhere
        assert all("zak" not in str(row.model_dump()) for row in notifications.disclosures(s))


def _refused(response: httpx.Response, status: int, phrase: str) -> None:
    assert response.status_code == status, response.text[:200]
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert phrase in response.text
    assert "zak=" not in response.text and "Traceback" not in response.text


def test_a_tampered_link_gets_a_clear_page(web: SeededWeb) -> None:
    url = link(web)
    _refused(open_link(url[:-2] + ("AA" if not url.endswith("AA") else "BB")), 403, "not valid")
    _refused(open_link(f"{web.url}/start/garbage"), 403, "not valid")
    _refused(open_link(link(web, keys=[Fernet.generate_key().decode()])), 403, "not valid")
    assert audits(web) == []


def test_an_expired_link_gets_a_clear_page(web: SeededWeb) -> None:
    _refused(open_link(link(web, expires_at=datetime.now(UTC) - timedelta(seconds=1))), 410, "expired")
    assert audits(web) == []


def test_a_cancelled_appointment_gets_a_clear_page(web: SeededWeb) -> None:
    _refused(open_link(link(web, "A-C")), 410, "cancelled")
    _refused(open_link(link(web, "A-unknown")), 410, "cancelled")
    assert audits(web) == []


def test_a_doctor_no_longer_assigned_gets_a_clear_page(web: SeededWeb) -> None:
    url = link(web)  # issued to D-1
    with web.database.session() as s:
        appointment = appointments.get_appointment(s, "A-1")
        assert appointment is not None
        appointment.doctor_id = "D-2"
        appointments.save(s, appointment)
    _refused(open_link(url), 403, "no longer yours")
    _refused(open_link(link(web, "A-2", "D-1")), 403, "no longer yours")
    assert audits(web) == []


def test_a_meeting_not_yet_made_asks_to_try_again(web: SeededWeb) -> None:
    _refused(open_link(link(web, "A-P")), 409, "try the link again")


def test_zoom_trouble_gets_a_page_not_a_500(web: SeededWeb, zoom_sim: Any) -> None:
    zoom_sim.inject_failure(503, {"code": 503, "message": "unavailable"}, count=10, method="GET",
                            path_prefix="/v2/meetings")
    _refused(open_link(link(web)), 503, "Zoom is not answering")
    assert audits(web) == []
