"""The Zoom simulator itself: Zoom's behaviour where it matters, and the admin API."""

from __future__ import annotations

import base64
import io
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from telemed.zoom.client import ZoomClient
from telemed.zoom.errors import ZoomAuthError
from telemed.zoom.policy import build_meeting_request, check_settings, generate_passcode, make_marker
from telemed.zoom.simulator import ZoomSimulator
from telemed.zoom.simulator.cli import main
from telemed.zoom.tokens import StaticTokenProvider

pytestmark = pytest.mark.integration


@pytest.fixture
def sim(shared_sim: ZoomSimulator) -> ZoomSimulator:
    shared_sim.reset()
    return shared_sim


@pytest.fixture
def http(sim: ZoomSimulator) -> Iterator[requests.Session]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {sim.issue_token()}"
    yield session
    session.close()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def future(days: int = 1) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


class TestOAuth:
    def token(
        self, sim: ZoomSimulator, auth: str, data: dict[str, str] | None = None, **kw: Any
    ) -> requests.Response:
        form = (
            {"grant_type": "account_credentials", "account_id": sim.account_id}
            if data is None
            else data
        )
        return requests.post(
            f"{sim.oauth_url}/token", data=form, headers={"Authorization": auth}, timeout=5, **kw
        )

    def test_grant(self, sim: ZoomSimulator) -> None:
        answer = self.token(sim, basic(sim.client_id, sim.client_secret))
        assert answer.status_code == 200
        body = answer.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 3600
        assert "meeting:write:meeting:admin" in body["scope"] and body["access_token"]
        assert sim.grants == 1

    def test_query_string_form_is_accepted(self, sim: ZoomSimulator) -> None:
        answer = requests.post(
            f"{sim.oauth_url}/token",
            params={"grant_type": "account_credentials", "account_id": sim.account_id},
            headers={"Authorization": basic(sim.client_id, sim.client_secret)},
            timeout=5,
        )
        assert answer.status_code == 200

    @pytest.mark.parametrize(
        ("auth", "status", "error"),
        [
            ("", 401, "invalid_client"),
            ("Basic !!!", 401, "invalid_client"),
            ("Bearer x", 401, "invalid_client"),
        ],
    )
    def test_client_authentication(
        self, sim: ZoomSimulator, auth: str, status: int, error: str
    ) -> None:
        answer = self.token(sim, auth)
        assert answer.status_code == status and answer.json()["error"] == error
        assert sim.grants == 0

    def test_wrong_secret_grant_type_or_account(self, sim: ZoomSimulator) -> None:
        assert self.token(sim, basic(sim.client_id, "nope")).status_code == 401
        good = basic(sim.client_id, sim.client_secret)
        wrong_grant = self.token(sim, good, {"grant_type": "client_credentials"})
        assert (wrong_grant.status_code, wrong_grant.json()["error"]) == (
            400,
            "unsupported_grant_type",
        )
        wrong_account = self.token(
            sim, good, {"grant_type": "account_credentials", "account_id": "x"}
        )
        assert (wrong_account.status_code, wrong_account.json()["error"]) == (
            400,
            "invalid_request",
        )
        assert sim.grants == 0


class TestBearer:
    def test_missing_unknown_and_expired_tokens(
        self, sim: ZoomSimulator, http: requests.Session
    ) -> None:
        url = f"{sim.api_url}/users/me/meetings"
        assert requests.get(url, timeout=5).json() == {
            "code": 124,
            "message": "Invalid access token.",
        }
        unknown = requests.get(url, headers={"Authorization": "Bearer made-up"}, timeout=5)
        assert unknown.status_code == 401 and unknown.json()["code"] == 124
        assert http.get(url, timeout=5).status_code == 200
        sim.expire_tokens()
        expired = http.get(url, timeout=5)
        assert expired.status_code == 401 and expired.json()["code"] == 124

    def test_short_token_lifetime(self) -> None:
        with ZoomSimulator(token_lifetime_seconds=0.05) as short:
            token = short.issue_token()
            assert short.state.token_status(token) == "valid"
            threading.Event().wait(0.1)
            assert short.state.token_status(token) == "expired"


class TestMeetings:
    def create(
        self, sim: ZoomSimulator, http: requests.Session, body: dict[str, Any], user: str = "me"
    ) -> requests.Response:
        return http.post(f"{sim.api_url}/users/{user}/meetings", json=body, timeout=5)

    def test_scheduled_meeting_without_start_time_becomes_instant(
        self, sim: ZoomSimulator, http: requests.Session
    ) -> None:
        answer = self.create(sim, http, {"topic": "t", "type": 2, "duration": 30})
        assert answer.status_code == 201
        meeting = answer.json()
        assert meeting["type"] == 1
        assert abs(datetime.fromisoformat(meeting["start_time"]) - datetime.now(UTC)) < timedelta(
            minutes=1
        )
        assert sim.meetings()[0]["instant_conversion"] == "missing start_time"

    def test_unparseable_start_time_also_becomes_instant(
        self, sim: ZoomSimulator, http: requests.Session
    ) -> None:
        meeting = self.create(sim, http, {"type": 2, "start_time": "03.12.2026 09:30"}).json()
        assert (
            meeting["type"] == 1 and sim.meetings()[0]["instant_conversion"] == "invalid start_time"
        )

    def test_local_start_time_is_read_in_the_meeting_timezone(
        self, sim: ZoomSimulator, http: requests.Session
    ) -> None:
        body = {"type": 2, "start_time": "2026-12-03T09:30:00", "timezone": "Europe/Berlin"}
        assert self.create(sim, http, body).json()["start_time"] == "2026-12-03T08:30:00Z"
        assert sim.meetings()[0]["instant_conversion"] is None

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"password": "x" * 11}, "password"),
            ({"password": "pass word"}, "password"),
            ({"topic": "t" * 201}, "topic"),
            ({"type": 5}, "type"),
            ({"timezone": "Mars/Olympus"}, "timezone"),
            ({"settings": {"approval_type": 9}}, "settings.approval_type"),
            ({"settings": {"waiting_room": "yes"}}, "settings.waiting_room"),
            ({"settings": []}, "settings"),
        ],
    )
    def test_validation(
        self, sim: ZoomSimulator, http: requests.Session, body: dict[str, Any], field: str
    ) -> None:
        answer = self.create(sim, http, {"start_time": future(), **body})
        assert answer.status_code == 400
        assert answer.json()["code"] == 300 and answer.json()["errors"][0]["field"] == field
        assert sim.meetings() == []

    def test_invalid_json(self, sim: ZoomSimulator, http: requests.Session) -> None:
        answer = http.post(
            f"{sim.api_url}/users/me/meetings",
            data=b"{oops",
            timeout=5,
            headers={"Content-Type": "application/json"},
        )
        assert answer.status_code == 400 and answer.json()["code"] == 300
        assert self.create(sim, http, [1, 2]).status_code == 400  # type: ignore[arg-type]

    def test_settings_defaults_locks_and_waiting_room_rule(
        self, sim: ZoomSimulator, http: requests.Session
    ) -> None:
        bare = self.create(sim, http, {"start_time": future()}).json()
        assert (
            bare["settings"]["waiting_room"] is False
            and bare["settings"]["join_before_host"] is True
        )
        assert re.fullmatch(r"\d{6}", bare["password"])  # the account requires a passcode

        asked = self.create(
            sim,
            http,
            {"start_time": future(), "settings": {"waiting_room": True, "join_before_host": True}},
        )
        assert asked.json()["settings"]["join_before_host"] is False  # a waiting room disables it

        sim.lock_setting("auto_recording", "cloud")
        body = build_meeting_request(
            topic="t",
            start_time=datetime.now(UTC) + timedelta(days=1),
            duration_minutes=30,
            timezone="UTC",
            passcode=generate_passcode(),
            marker=make_marker("A-9"),
        )
        locked = self.create(sim, http, body).json()
        assert check_settings(body, locked) == [
            "settings.auto_recording: expected 'none', got 'cloud'"
        ]

    def test_update_and_delete(self, sim: ZoomSimulator, http: requests.Session) -> None:
        meeting = self.create(sim, http, {"start_time": future(), "password": "abc123"}).json()
        url = f"{sim.api_url}/meetings/{meeting['id']}"
        patched = http.patch(
            url, json={"password": "xyz789", "settings": {"waiting_room": True}}, timeout=5
        )
        assert patched.status_code == 204 and patched.content == b""
        after = http.get(url, timeout=5).json()
        assert after["password"] == "xyz789" and after["settings"]["waiting_room"] is True
        assert after["join_url"] != meeting["join_url"]  # the embedded passcode changed
        assert http.patch(url, json={"start_time": "tomorrow"}, timeout=5).status_code == 400
        assert http.delete(url, timeout=5).status_code == 204
        gone = http.delete(url, timeout=5)
        assert gone.status_code == 404
        assert gone.json() == {"code": 3001, "message": f"Meeting does not exist: {meeting['id']}."}
        assert http.patch(url, json={"duration": 5}, timeout=5).status_code == 404
        views = sim.meetings()
        assert len(views) == 1 and views[0]["deleted"] is True and views[0]["created"] is True
        assert sim.meetings(include_deleted=False) == []

    def test_list_types_and_paging(self, sim: ZoomSimulator, http: requests.Session) -> None:
        for days in (1, 2, 3):
            self.create(
                sim, http, {"start_time": future(days), "duration": 30}, user="ada@clinic.example"
            )
        self.create(sim, http, {"start_time": "2020-01-01T10:00:00Z"}, user="ada@clinic.example")
        url = f"{sim.api_url}/users/ada%40clinic.example/meetings"
        upcoming = http.get(url, params={"type": "upcoming", "page_size": "2"}, timeout=5).json()
        assert upcoming["total_records"] == 3 and len(upcoming["meetings"]) == 2
        second_page = {
            "type": "upcoming",
            "page_size": "2",
            "next_page_token": upcoming["next_page_token"],
        }
        rest = http.get(url, params=second_page, timeout=5).json()
        assert len(rest["meetings"]) == 1 and rest["next_page_token"] == ""
        again = http.get(url, params=second_page, timeout=5).json()  # a retry of the page
        assert again["meetings"] == rest["meetings"]
        starts = [m["start_time"] for m in upcoming["meetings"] + rest["meetings"]]
        assert starts == sorted(starts)
        assert (
            "password" not in upcoming["meetings"][0] and "start_url" not in upcoming["meetings"][0]
        )
        assert (
            http.get(url, params={"type": "previous_meetings"}, timeout=5).json()["total_records"]
            == 1
        )
        assert http.get(url, params={"type": "scheduled"}, timeout=5).json()["total_records"] == 4
        assert http.get(url, params={"type": "bogus"}, timeout=5).status_code == 400
        assert http.get(url, params={"next_page_token": "forged"}, timeout=5).status_code == 400
        host_id = upcoming["meetings"][0]["host_id"]
        by_id = http.get(
            f"{sim.api_url}/users/{host_id}/meetings", params={"type": "scheduled"}, timeout=5
        ).json()
        assert by_id["total_records"] == 4

    def test_unknown_routes(self, sim: ZoomSimulator, http: requests.Session) -> None:
        assert http.get(f"{sim.api_url}/nothing", timeout=5).status_code == 404
        assert http.put(f"{sim.api_url}/meetings/123", json={}, timeout=5).status_code == 405
        assert http.get(f"{sim.api_url}/meetings/not-a-number", timeout=5).status_code == 404


class TestAdmin:
    def test_http_admin_api(self, sim: ZoomSimulator, http: requests.Session) -> None:
        base = sim.base_url
        http.post(f"{sim.api_url}/users/me/meetings", json={"start_time": future()}, timeout=5)
        meetings = requests.get(f"{base}/_sim/meetings", timeout=5).json()["meetings"]
        assert len(meetings) == 1 and meetings[0]["deleted"] is False
        log = requests.get(f"{base}/_sim/requests", timeout=5).json()["requests"]
        assert [(e["method"], e["path"], e["status"]) for e in log] == [
            ("POST", "/v2/users/me/meetings", 201)
        ]
        assert log[0]["json"] == {"start_time": meetings[0]["meeting"]["start_time"]}
        assert "authorization" not in str(log).lower()
        stats = requests.get(f"{base}/_sim/stats", timeout=5).json()
        assert stats == {
            "grants": 1,
            "meetings": 1,
            "deleted": 0,
            "requests": 1,
            "counters": {"grant.account": 1, "meetings.created": 1},
            "accounts": {sim.account_id: {"grant.account": 1, "meetings.created": 1}},
        }

        fault: dict[str, Any] = {
            "status": 429,
            "body": {"code": 429, "message": "slow"},
            "headers": {"Retry-After": "2"},
        }
        assert requests.post(f"{base}/_sim/faults", json=fault, timeout=5).status_code == 204
        limited = http.get(f"{sim.api_url}/users/me/meetings", timeout=5)
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
        assert requests.post(f"{base}/_sim/faults", json={"nope": 1}, timeout=5).status_code == 400
        broken = {"status": 500, "count": "many"}
        assert requests.post(f"{base}/_sim/faults", json=broken, timeout=5).status_code == 500

        assert (
            requests.post(
                f"{base}/_sim/lock-settings", json={"waiting_room": False}, timeout=5
            ).status_code
            == 204
        )
        assert sim.state.locked_settings == {"waiting_room": False}
        assert requests.post(f"{base}/_sim/expire-tokens", timeout=5).status_code == 204
        assert http.get(f"{sim.api_url}/users/me/meetings", timeout=5).status_code == 401
        assert requests.post(f"{base}/_sim/reset", timeout=5).status_code == 204
        assert sim.meetings() == [] and sim.requests() == [] and sim.grants == 0

    def test_fault_matching(self, sim: ZoomSimulator, http: requests.Session) -> None:
        sim.inject_failure(500, None, method="DELETE", path_prefix="/v2/meetings/", count=2)
        assert http.get(f"{sim.api_url}/meetings/1", timeout=5).status_code == 404  # not matched
        assert http.delete(f"{sim.api_url}/meetings/1", timeout=5).status_code == 500
        assert http.delete(f"{sim.api_url}/meetings/1", timeout=5).status_code == 500
        assert http.delete(f"{sim.api_url}/meetings/1", timeout=5).status_code == 404

    def test_latency(self, sim: ZoomSimulator, http: requests.Session) -> None:
        # A whole second, so that the admin call's "not delayed" holds on a busy machine too.
        sim.latency_seconds = 1.0
        try:
            answer = http.get(f"{sim.api_url}/users/me/meetings", timeout=5)
            assert answer.elapsed >= timedelta(seconds=1.0)
            assert requests.get(f"{sim.base_url}/_sim/stats", timeout=5).elapsed < timedelta(
                seconds=1.0
            )
        finally:
            sim.latency_seconds = 0.0

    def test_ids_are_64_bit_and_unique(self, sim: ZoomSimulator) -> None:
        ids = [sim.state.new_meeting_id() for _ in range(1000)]
        assert all(2**33 < i < 10**11 for i in ids)


def test_cli_serves_until_stopped() -> None:
    stop = threading.Event()
    output = io.StringIO()
    result: list[int] = []

    def run() -> None:
        with redirect_stdout(output):
            result.append(main(["--port", "0", "--latency", "0", "--daily-limit", "5"], stop=stop))

    thread = threading.Thread(target=run)
    thread.start()
    try:
        for _ in range(100):
            match = re.search(r"TELEMED_ZOOM_API_URL=(\S+)", output.getvalue())
            if match and "admin:" in output.getvalue():
                break
            threading.Event().wait(0.02)
        assert match, output.getvalue()
        api_url = match.group(1)
        assert requests.get(api_url.replace("/v2", "/_sim/stats"), timeout=5).status_code == 200
        client = ZoomClient(api_url, StaticTokenProvider("not-issued"))
        with pytest.raises(ZoomAuthError):
            client.list_meetings("me")
    finally:
        stop.set()
        thread.join(5)
    assert result == [0]


def test_cli_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--latency", "-1"]) == 2
    with pytest.raises(SystemExit):
        main(["--port", "not-a-port"])


def test_a_client_that_hangs_up_leaves_no_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    """A worker that stops resets its idle keep-alive connections; the simulator's output
    (a demo's, a benchmark's) must not fill with tracebacks for it."""
    with ZoomSimulator() as sim:
        for _ in range(3):
            client = socket.create_connection((sim.host, sim.port), timeout=5)
            client.sendall(b"GET /v2/users/me HTTP/1.1\r\nHost: sim\r\n\r\n")
            assert client.recv(4096).startswith(b"HTTP/1.1 404")  # unknown route: answered
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()  # RST while the server waits for the next request line
        # One more request proves the server lives on, and is only answered once the
        # resets above have been read.
        assert requests.get(f"{sim.api_url}/users/me", timeout=5).status_code == 404
        time.sleep(0.2)
    assert "Traceback" not in capfd.readouterr().err
