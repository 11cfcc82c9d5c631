"""Contract tests: our requests and the simulator's answers against Zoom's OpenAPI spec.

Requests must validate AND use only fields the spec declares (Zoom silently ignores a
misspelt setting, which would quietly drop a security control). Responses must validate;
extra fields are allowed there because real Zoom returns some the spec omits (uuid, ...).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from telemed.zoom.client import ZoomClient
from telemed.zoom.policy import build_meeting_request, build_update_request, generate_passcode, make_marker
from telemed.zoom.simulator import ZoomSimulator
from telemed.zoom.tokens import StaticTokenProvider
from tests.support import openapi
from tests.support.openapi import (
    documented_statuses,
    error_body_errors,
    request_errors,
    request_pointer,
    response_errors,
    undeclared_fields,
)

pytestmark = pytest.mark.integration

CREATE = ("/users/{userId}/meetings", "post")
LIST = ("/users/{userId}/meetings", "get")
GET = ("/meetings/{meetingId}", "get")
UPDATE = ("/meetings/{meetingId}", "patch")
DELETE = ("/meetings/{meetingId}", "delete")


@pytest.fixture(scope="module", autouse=True)
def spec() -> dict[str, Any]:
    try:
        return openapi.load_spec()
    except openapi.SpecMissing as missing:
        pytest.fail(str(missing), pytrace=False)


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


def create_body(
    meeting_authentication: bool = False, appointment: str = "A-1001"
) -> dict[str, Any]:
    return build_meeting_request(
        topic="Video consultation with Dr. Lovelace",
        start_time=datetime.now(UTC) + timedelta(days=2),
        duration_minutes=30,
        timezone="Europe/Berlin",
        passcode=generate_passcode(),
        marker=make_marker(appointment),
        meeting_authentication=meeting_authentication,
    )


def assert_request_ok(operation: tuple[str, str], body: Any) -> None:
    assert request_errors(*operation, body) == []
    assert undeclared_fields(request_pointer(*operation), body) == []


def assert_error_ok(operation: tuple[str, str], answer: requests.Response) -> None:
    assert error_body_errors(answer.json()) == []
    assert answer.status_code in documented_statuses(*operation)


class TestOurRequests:
    @pytest.mark.parametrize("meeting_authentication", [False, True])
    def test_create_body(self, meeting_authentication: bool) -> None:
        assert_request_ok(CREATE, create_body(meeting_authentication))

    def test_update_body(self) -> None:
        assert_request_ok(
            UPDATE, build_update_request(datetime.now(UTC) + timedelta(days=1), 45, "UTC")
        )

    def test_the_checker_catches_mistakes(self) -> None:
        body = create_body()
        body["settings"]["waiting_rom"] = True
        body["type"] = 4
        assert undeclared_fields(request_pointer(*CREATE), body) == ["settings.waiting_rom"]
        assert request_errors(*CREATE, body) == ["type: 4 is not one of [1, 2, 3, 8, 10]"]

    def test_everything_the_client_sent(self, sim: ZoomSimulator) -> None:
        client = ZoomClient(sim.api_url, StaticTokenProvider(sim.issue_token()))
        meeting = client.create_meeting("ada@clinic.example", create_body(True))
        client.update_meeting(
            meeting["id"], build_update_request(datetime.now(UTC) + timedelta(days=3), 20, "UTC")
        )
        client.list_meetings("ada@clinic.example")
        client.delete_meeting(meeting["id"])
        sent = sim.requests()
        assert [r["method"] for r in sent] == ["POST", "PATCH", "GET", "DELETE"]
        assert_request_ok(CREATE, sent[0]["json"])
        assert_request_ok(UPDATE, sent[1]["json"])
        list_params = {
            p["name"]: p["schema"]
            for p in openapi.load_spec()["paths"][LIST[0]]["get"]["parameters"]
        }
        assert set(sent[2]["query"]) <= set(list_params)
        assert sent[2]["query"]["type"] in list_params["type"]["enum"]
        assert int(sent[2]["query"]["page_size"]) <= list_params["page_size"]["maximum"]


class TestSimulatorAnswers:
    def test_create_get_and_list(self, sim: ZoomSimulator, http: requests.Session) -> None:
        created = http.post(
            f"{sim.api_url}/users/ada%40clinic.example/meetings", json=create_body(), timeout=5
        )
        assert created.status_code == 201
        assert response_errors(*CREATE, 201, created.json()) == []

        fetched = http.get(f"{sim.api_url}/meetings/{created.json()['id']}", timeout=5)
        assert response_errors(*GET, 200, fetched.json()) == []

        instant = http.post(
            f"{sim.api_url}/users/me/meetings", json={"topic": "no start"}, timeout=5
        )
        assert response_errors(*CREATE, 201, instant.json()) == []

        for n in range(3):
            http.post(
                f"{sim.api_url}/users/ada%40clinic.example/meetings",
                json=create_body(appointment=f"B{n}"),
                timeout=5,
            )
        listed = http.get(
            f"{sim.api_url}/users/ada%40clinic.example/meetings",
            params={"type": "upcoming", "page_size": "2"},
            timeout=5,
        )
        assert listed.json()["next_page_token"] and len(listed.json()["meetings"]) == 2
        assert response_errors(*LIST, 200, listed.json()) == []
        empty = http.get(f"{sim.api_url}/users/nobody%40clinic.example/meetings", timeout=5)
        assert response_errors(*LIST, 200, empty.json()) == []

    def test_the_checker_catches_bad_answers(self) -> None:
        assert response_errors(*GET, 200, {"id": "85746065123", "status": "sleeping"}) == [
            "id: '85746065123' is not of type 'integer'",
            "status: 'sleeping' is not one of ['waiting', 'started']",
        ]

    def test_not_found_errors(self, sim: ZoomSimulator, http: requests.Session) -> None:
        url = f"{sim.api_url}/meetings/85746065123"
        for operation, answer in [
            (GET, http.get(url, timeout=5)),
            (UPDATE, http.patch(url, json={"duration": 10}, timeout=5)),
            (DELETE, http.delete(url, timeout=5)),
        ]:
            assert answer.status_code == 404 and answer.json()["code"] == 3001
            assert_error_ok(operation, answer)

    def test_validation_error(self, sim: ZoomSimulator, http: requests.Session) -> None:
        answer = http.post(
            f"{sim.api_url}/users/me/meetings", json={"password": "x" * 20}, timeout=5
        )
        assert answer.status_code == 400
        assert_error_ok(CREATE, answer)

    def test_daily_limit_error(self, sim: ZoomSimulator, http: requests.Session) -> None:
        sim.daily_limit = 0
        try:
            answer = http.post(f"{sim.api_url}/users/me/meetings", json=create_body(), timeout=5)
        finally:
            sim.daily_limit = None
        assert answer.status_code == 429
        assert_error_ok(CREATE, answer)

    def test_auth_error_shape(self, sim: ZoomSimulator) -> None:
        answer = requests.get(f"{sim.api_url}/meetings/1", timeout=5)
        assert answer.status_code == 401  # Zoom documents 401 globally, not per operation
        assert error_body_errors(answer.json()) == []


# The Zoom adapter's newer traffic: user tokens, rate limits, the OAuth endpoints --------


class TestUserOAuthTraffic:
    """What our code sends to and gets from the OAuth endpoints, and every API request a
    doctor's own client sends, against the spec (API) and Zoom's OAuth documentation."""

    def test_token_requests_and_answers(
        self, sim: ZoomSimulator, tmp_path: Path, redis_url: str
    ) -> None:
        from urllib.parse import parse_qsl

        import redis as redis_lib
        from cryptography.fernet import Fernet

        from telemed.foundation.cipher import Cipher
        from telemed.store.db import Database
        from telemed.store.migrate import upgrade
        from telemed.store.zoom_tokens import DatabaseTokenStore
        from telemed.zoom.oauth import request_token
        from telemed.zoom.ratelimit import RateLimiter
        from telemed.zoom.user_tokens import UserTokenProvider
        from tests.support.zoom_oauth import connect_doctor

        sent: list[dict[str, str]] = []
        answers: list[tuple[int, Any]] = []

        def capture(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            if response.request.url and response.request.url.endswith("/oauth/token"):
                sent.append(dict(parse_qsl(str(response.request.body))))
                answers.append((response.status_code, response.json()))

        http = requests.Session()
        http.hooks["response"].append(capture)
        url = f"sqlite:///{tmp_path / 'contract.db'}"
        upgrade(url)
        key = Fernet.generate_key().decode()
        database = Database(url, cipher=Cipher([key]))
        client_redis = redis_lib.Redis.from_url(redis_url)
        try:
            sim.token_lifetime_seconds = 2
            connect_doctor(database, sim, "D-7", "ada@clinic.example")
            provider = UserTokenProvider(
                "D-7", DatabaseTokenStore(database), oauth_url=sim.oauth_url, client_id=sim.oauth_client_id,
                client_secret=sim.oauth_client_secret, redis_client=client_redis, cipher=Cipher([key]),
                namespace=f"contract{id(self)}", session=http, margin_seconds=1,
            )
            limiter = RateLimiter(client_redis, {"Medium": 20, "Light": 30}, namespace=f"contract{id(self)}")
            client = ZoomClient(sim.api_url, provider, limiter=limiter.for_scope("doctor:D-7"))
            threading_wait(1.1)  # past the margin: the next call refreshes (rotation)
            meeting = client.create_meeting("me", create_body())
            client.get_meeting(meeting["id"])
            client.update_meeting(meeting["id"], build_update_request(datetime.now(UTC) + timedelta(days=3), 20, "UTC"))
            client.list_meetings("me")
            client.delete_meeting(meeting["id"])
            request_token(sim.oauth_url, client_id=sim.client_id, client_secret=sim.client_secret,
                          form={"grant_type": "account_credentials", "account_id": sim.account_id}, session=http)
        finally:
            sim.token_lifetime_seconds = 3600
            database.dispose()
            client_redis.close()
        assert [form["grant_type"] for form in sent] == ["refresh_token", "account_credentials"]
        for form in sent:
            assert openapi.schema_errors(openapi.OAUTH_TOKEN_REQUEST_SCHEMAS[form["grant_type"]], form) == []
        assert answers[0][0] == 200 and openapi.schema_errors(openapi.OAUTH_USER_TOKEN_SCHEMA, answers[0][1]) == []
        assert answers[1][0] == 200 and openapi.schema_errors(openapi.OAUTH_ACCOUNT_TOKEN_SCHEMA, answers[1][1]) == []
        api = [r for r in sim.requests() if r["path"].startswith("/v2/")]
        assert [r["method"] for r in api] == ["POST", "GET", "PATCH", "GET", "DELETE"]
        assert_request_ok(CREATE, api[0]["json"])
        assert_request_ok(UPDATE, api[2]["json"])
        assert all(r["status"] < 300 for r in api)

    def test_oauth_error_answers(self, sim: ZoomSimulator) -> None:
        form = {"grant_type": "refresh_token", "refresh_token": "never-issued"}
        for auth in [(sim.oauth_client_id, sim.oauth_client_secret), (sim.oauth_client_id, "wrong")]:
            answer = requests.post(f"{sim.oauth_url}/token", data=form, auth=auth, timeout=5)
            assert answer.status_code in {400, 401}
            assert openapi.schema_errors(openapi.OAUTH_ERROR_SCHEMA, answer.json()) == []
        odd = requests.post(f"{sim.oauth_url}/token", data={"grant_type": "password"},
                            auth=(sim.oauth_client_id, sim.oauth_client_secret), timeout=5)
        assert openapi.schema_errors(openapi.OAUTH_ERROR_SCHEMA, odd.json()) == []

    def test_rate_limit_answers(self, sim: ZoomSimulator, http: requests.Session) -> None:
        sim.rate_limits = {"Medium": 1, "Light": 1}
        sim.daily_limit = 1
        try:
            url = f"{sim.api_url}/users/me/meetings"
            assert http.get(url, timeout=5).status_code == 200
            per_second = http.get(url, timeout=5)
            assert per_second.status_code == 429
            assert_error_ok(LIST, per_second)
            threading_wait(1.05)
            created = http.post(url, json=create_body(), timeout=5)
            assert created.status_code == 201 and response_errors(*CREATE, 201, created.json()) == []
            threading_wait(1.05)
            daily = http.post(url, json=create_body(), timeout=5)
            assert daily.status_code == 429 and daily.headers["X-RateLimit-Type"] == "Daily-limit"
            assert_error_ok(CREATE, daily)
            threading_wait(1.05)
            gone = http.get(f"{sim.api_url}/meetings/{created.json()['id'] + 1}", timeout=5)
            assert_error_ok(GET, gone)
        finally:
            sim.rate_limits = {}
            sim.daily_limit = None

    def test_user_token_list_and_scoping_errors(self, sim: ZoomSimulator) -> None:
        from tests.support.zoom_oauth import authorize

        body = authorize(sim, "ada@clinic.example")
        user = requests.Session()
        user.headers["Authorization"] = f"Bearer {body['access_token']}"
        mine = user.post(f"{sim.api_url}/users/me/meetings", json=create_body(), timeout=5)
        listed = user.get(f"{sim.api_url}/users/me/meetings", params={"type": "upcoming"}, timeout=5)
        assert response_errors(*LIST, 200, listed.json()) == []
        assert [m["id"] for m in listed.json()["meetings"]] == [mine.json()["id"]]
        elsewhere = user.get(f"{sim.api_url}/users/grace%40clinic.example/meetings", timeout=5)
        assert elsewhere.status_code == 404
        assert_error_ok(LIST, elsewhere)


def threading_wait(seconds: float) -> None:
    import threading

    threading.Event().wait(seconds)
