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

from tests.support import openapi
from tests.support.openapi import (
    documented_statuses,
    error_body_errors,
    request_errors,
    request_pointer,
    response_errors,
    undeclared_fields,
)
from zoom.client import ZoomClient
from zoom.policy import build_meeting_request, build_update_request, generate_passcode, make_marker
from zoom.simulator import ZoomSimulator
from zoom.tokens import StaticTokenProvider

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


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[ZoomSimulator]:
    with ZoomSimulator() as sim:
        yield sim


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


class TestSpecLocation:
    def test_default_is_beside_the_repository(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv(openapi.SPEC_ENV, raising=False)
        repo = Path(openapi.__file__).resolve().parents[2]
        assert openapi.spec_path() == repo.parent / "shared" / "zoom" / openapi.SPEC_NAME

    def test_env_override_and_clear_failure(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        missing = tmp_path / "nowhere.json"
        monkeypatch.setenv(openapi.SPEC_ENV, str(missing))
        assert openapi.spec_path() == missing
        with pytest.raises(openapi.SpecMissing, match=openapi.SPEC_ENV) as caught:
            openapi.load_spec()
        assert str(missing) in str(caught.value)
