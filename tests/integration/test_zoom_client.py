"""ZoomClient over real HTTP against the local Zoom simulator."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import telemed.zoom.client
from telemed.zoom.client import ZoomClient
from telemed.zoom.errors import (
    ZoomAuthError,
    ZoomNotFound,
    ZoomPermanentError,
    ZoomRateLimited,
    ZoomTransientError,
)
from telemed.zoom.policy import (
    build_meeting_request,
    build_update_request,
    check_settings,
    find_marked,
    generate_passcode,
    make_marker,
)
from telemed.zoom.simulator import ZoomSimulator
from telemed.zoom.tokens import StaticTokenProvider

pytestmark = pytest.mark.integration
DOCTOR = "ada@clinic.example"


@pytest.fixture
def sim(shared_sim: ZoomSimulator) -> ZoomSimulator:
    shared_sim.reset()
    shared_sim.latency_seconds = 0.0
    return shared_sim


@pytest.fixture
def client(sim: ZoomSimulator) -> Iterator[ZoomClient]:
    client = ZoomClient(sim.api_url, StaticTokenProvider(sim.issue_token()), timeout=5)
    yield client
    client.close()


class CountingProvider:
    """Hands out simulator tokens and records invalidations."""

    def __init__(self, sim: ZoomSimulator) -> None:
        self.sim = sim
        self.current = sim.issue_token()
        self.invalidated: list[str] = []

    def access_token(self) -> str:
        return self.current

    def invalidate(self, token: str) -> None:
        self.invalidated.append(token)
        if token == self.current:
            self.current = self.sim.issue_token()


def meeting_body(appointment_id: str = "A-1001", days: int = 2) -> dict[str, Any]:
    start = (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)
    return build_meeting_request(
        topic="Video consultation",
        start_time=start,
        duration_minutes=30,
        timezone="Europe/Berlin",
        passcode=generate_passcode(),
        marker=make_marker(appointment_id),
    )


def test_round_trip(client: ZoomClient, sim: ZoomSimulator) -> None:
    body = meeting_body()
    created = client.create_meeting(DOCTOR, body)
    meeting_id = created["id"]
    assert isinstance(meeting_id, int) and meeting_id > 2**33
    assert check_settings(body, created) == []
    assert created["host_email"] == DOCTOR
    assert created["start_url"].startswith(f"https://zoom.us/s/{meeting_id}?zak=")
    assert created["join_url"].startswith(f"https://zoom.us/j/{meeting_id}?pwd=")

    fetched = client.get_meeting(meeting_id)
    assert fetched["id"] == meeting_id and check_settings(body, fetched) == []
    assert fetched["start_url"] != created["start_url"]  # a fresh zak every time

    listed = client.list_meetings(DOCTOR)
    assert find_marked(listed, make_marker("A-1001"))["id"] == meeting_id  # type: ignore[index]

    new_start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    client.update_meeting(meeting_id, build_update_request(new_start, 45, "UTC"))
    moved = client.get_meeting(meeting_id)
    assert (
        moved["start_time"] == new_start.strftime("%Y-%m-%dT%H:%M:%SZ") and moved["duration"] == 45
    )

    assert client.delete_meeting(meeting_id) is True
    assert client.delete_meeting(meeting_id) is False  # already gone
    with pytest.raises(ZoomNotFound):
        client.get_meeting(meeting_id)
    assert client.list_meetings(DOCTOR) == []
    assert [r["method"] for r in sim.requests()] == [
        "POST",
        "GET",
        "GET",
        "PATCH",
        "GET",
        "DELETE",
        "DELETE",
        "GET",
        "GET",
    ]


def test_hosts_are_quoted_into_one_path_segment(client: ZoomClient, sim: ZoomSimulator) -> None:
    client.create_meeting("dr+ada@clinic.example", meeting_body())
    client.create_meeting("me", meeting_body("A-2"))
    paths = [r["path"] for r in sim.requests(method="POST")]
    assert paths == ["/v2/users/dr%2Bada%40clinic.example/meetings", "/v2/users/me/meetings"]
    assert len(client.list_meetings("dr+ada@clinic.example")) == 1
    with pytest.raises(ValueError):
        client.list_meetings("")


def test_list_follows_next_page_token(
    client: ZoomClient, sim: ZoomSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(telemed.zoom.client, "LIST_PAGE_SIZE", 2)
    created = {
        client.create_meeting(DOCTOR, meeting_body(f"A-{i}", days=i + 1))["id"] for i in range(5)
    }
    client.create_meeting("someone.else@clinic.example", meeting_body("B-1"))
    listed = client.list_meetings(DOCTOR)
    assert {m["id"] for m in listed} == created and len(listed) == 5
    pages = sim.requests(method="GET", path_prefix="/v2/users/")
    assert len(pages) == 3
    assert "next_page_token" not in pages[0]["query"] and pages[1]["query"]["next_page_token"]


def test_rejected_token_is_invalidated_and_retried_once(sim: ZoomSimulator) -> None:
    tokens = CountingProvider(sim)
    client = ZoomClient(sim.api_url, tokens)
    first = tokens.current
    sim.expire_tokens()
    assert client.list_meetings(DOCTOR) == []
    assert tokens.invalidated == [first]
    assert [r["status"] for r in sim.requests()] == [401, 200]


def test_second_rejection_is_raised(sim: ZoomSimulator) -> None:
    tokens = CountingProvider(sim)
    client = ZoomClient(sim.api_url, tokens)
    sim.inject_failure(401, {"code": 124, "message": "Invalid access token."}, count=2)
    with pytest.raises(ZoomAuthError) as caught:
        client.get_meeting(85746065123)
    assert caught.value.token_rejected
    assert len(tokens.invalidated) == 1 and len(sim.requests()) == 2


def test_static_token_cannot_recover(client: ZoomClient, sim: ZoomSimulator) -> None:
    sim.expire_tokens()
    with pytest.raises(ZoomAuthError):
        client.list_meetings(DOCTOR)
    assert len(sim.requests()) == 2


def test_rate_limit_is_raised_with_hint(client: ZoomClient, sim: ZoomSimulator) -> None:
    sim.inject_failure(429, {"code": 429, "message": "Too many requests."}, {"Retry-After": "3"})
    with pytest.raises(ZoomRateLimited) as caught:
        client.create_meeting(DOCTOR, meeting_body())
    assert caught.value.retry_after == 3.0 and not caught.value.daily
    assert sim.meetings() == []


def test_daily_quota(sim: ZoomSimulator, client: ZoomClient) -> None:
    sim.daily_limit = 2
    try:
        meeting = client.create_meeting(DOCTOR, meeting_body("A-1"))
        client.update_meeting(meeting["id"], {"duration": 40})
        with pytest.raises(ZoomRateLimited) as caught:
            client.create_meeting(DOCTOR, meeting_body("A-2"))
        assert caught.value.daily and 0 < caught.value.retry_after <= 86400  # type: ignore[operator]
        client.create_meeting("other@clinic.example", meeting_body("A-3"))  # quota is per host
    finally:
        sim.daily_limit = None


def test_server_errors_are_transient_and_keep_secrets_out(
    client: ZoomClient, sim: ZoomSimulator
) -> None:
    leaked = "https://zoom.us/s/85746065123?zak=eyJzdiI6IjAwMDAwMSIsInptX3NrbSI6InptX28ybSJ9abc"
    sim.inject_failure(503, {"code": 503, "message": f"upstream failed for {leaked}"})
    with pytest.raises(ZoomTransientError) as caught:
        client.get_meeting(85746065123)
    assert "zak" not in str(caught.value) and "zoom.us" not in str(caught.value)
    assert caught.value.status == 503


def test_malformed_success_is_transient(client: ZoomClient, sim: ZoomSimulator) -> None:
    sim.inject_failure(200, ["not", "an", "object"], method="GET")
    with pytest.raises(ZoomTransientError):
        client.get_meeting(85746065123)


def test_redirects_are_not_followed(client: ZoomClient, sim: ZoomSimulator) -> None:
    sim.inject_failure(302, None, {"Location": "https://attacker.example/steal"})
    with pytest.raises(ZoomPermanentError) as caught:
        client.get_meeting(85746065123)
    assert caught.value.status == 302 and len(sim.requests()) == 1


def test_unknown_meeting(client: ZoomClient) -> None:
    with pytest.raises(ZoomNotFound) as caught:
        client.get_meeting(99999999999)
    assert caught.value.code == 3001
    with pytest.raises(ZoomNotFound):
        client.update_meeting(99999999999, {"duration": 10})


def test_invalid_request_is_permanent(client: ZoomClient) -> None:
    with pytest.raises(ZoomPermanentError) as caught:
        client.create_meeting(DOCTOR, {**meeting_body(), "password": "x" * 11})
    assert caught.value.status == 400 and caught.value.code == 300


def test_read_timeout_is_transient(sim: ZoomSimulator) -> None:
    sim.latency_seconds = 0.5
    client = ZoomClient(sim.api_url, StaticTokenProvider(sim.issue_token()), timeout=0.1)
    with pytest.raises(ZoomTransientError, match="timed out"):
        client.list_meetings(DOCTOR)
    # The simulator records the request after its delay: wait for it here, or it lands in
    # the next test's record of the shared simulator.
    deadline = time.monotonic() + 10
    while not sim.requests() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_connection_refused_is_transient() -> None:
    with ZoomSimulator() as gone:
        url = gone.api_url
    client = ZoomClient(url, StaticTokenProvider("t"), timeout=1)
    with pytest.raises(ZoomTransientError, match="connection failed"):
        client.get_meeting(1)


def test_insecure_urls_and_bad_ids_are_refused(sim: ZoomSimulator, client: ZoomClient) -> None:
    with pytest.raises(ValueError):
        ZoomClient("http://api.zoom.example/v2", StaticTokenProvider("t"))
    for bad in ("123", True, 0, -5, 1.5):
        with pytest.raises(ValueError):
            client.get_meeting(bad)  # type: ignore[arg-type]
    assert sim.requests() == []


def test_concurrent_creates_share_one_client(client: ZoomClient, sim: ZoomSimulator) -> None:
    ids: list[int] = []
    lock = threading.Lock()

    def create(n: int) -> None:
        meeting = client.create_meeting(DOCTOR, meeting_body(f"C-{n}"))
        with lock:
            ids.append(meeting["id"])

    threads = [threading.Thread(target=create, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 16 and len(sim.meetings()) == 16


def test_every_create_request_carried_the_secure_settings(
    client: ZoomClient, sim: ZoomSimulator
) -> None:
    for n in range(3):
        client.create_meeting(DOCTOR, meeting_body(f"S-{n}"))
    creates = sim.requests(method="POST", path_prefix="/v2/users/")
    assert len(creates) == 3
    for entry in creates:
        settings = entry["json"]["settings"]
        assert settings["waiting_room"] is True and settings["join_before_host"] is False
        assert settings["use_pmi"] is False and settings["auto_recording"] == "none"
        assert settings["auto_start_meeting_summary"] is False
        assert entry["json"]["password"] and entry["json"]["start_time"].endswith("Z")
