"""Registrants against Zoom's OpenAPI spec: what our client sends, what the simulator answers,
and the simulator's behaviour that the pipeline relies on (per-registrant links, cancels,
Zoom's refusals for hosts that cannot use registration)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from telemed.zoom import policy
from telemed.zoom.client import ZoomClient
from telemed.zoom.errors import ZoomPermanentError
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
ADD = ("/meetings/{meetingId}/registrants", "post")
LIST = ("/meetings/{meetingId}/registrants", "get")
STATUS = ("/meetings/{meetingId}/registrants/status", "put")
HOST = "ada@clinic.example"


@pytest.fixture
def sim(shared_sim: ZoomSimulator) -> ZoomSimulator:
    shared_sim.reset()
    return shared_sim


@pytest.fixture
def client(sim: ZoomSimulator) -> Iterator[ZoomClient]:
    zoom = ZoomClient(sim.api_url, StaticTokenProvider(sim.issue_token()))
    yield zoom
    zoom.close()


def create_body(registration: bool = True, appointment: str = "A-1001") -> dict[str, Any]:
    return policy.build_meeting_request(
        topic="Video appointment", start_time=datetime.now(UTC) + timedelta(days=2), duration_minutes=30,
        timezone="Europe/Berlin", passcode=policy.generate_passcode(), marker=policy.make_marker(appointment),
        registration=registration,
    )


def assert_request_ok(operation: tuple[str, str], body: Any) -> None:
    assert request_errors(*operation, body) == []
    assert undeclared_fields(request_pointer(*operation), body) == []


def assert_error_ok(operation: tuple[str, str], answer: dict[str, Any], status: int) -> None:
    assert error_body_errors(answer) == []
    assert status in documented_statuses(*operation)


class TestOurRequests:
    def test_registration_create_body(self) -> None:
        body = create_body()
        assert_request_ok(CREATE, body)
        assert body["settings"]["approval_type"] == 0
        assert body["settings"]["registrants_email_notification"] is False
        assert body["settings"]["registrants_confirmation_email"] is False
        assert body["settings"]["waiting_room"] is True  # the other secure settings stay
        assert "registration_type" not in body["settings"]  # for recurring (type 8) meetings only

    def test_without_registration_nothing_changes(self) -> None:
        assert create_body(registration=False)["settings"]["approval_type"] == 2
        assert "registrants_email_notification" not in create_body(registration=False)["settings"]

    def test_everything_the_client_sent(self, sim: ZoomSimulator, client: ZoomClient) -> None:
        meeting = client.create_meeting(HOST, create_body())
        added = client.add_registrant(meeting["id"], **_names("Ada King Lovelace", "ada.patient@example.org"))
        client.list_registrants(meeting["id"])
        client.cancel_registrants(meeting["id"], [added["registrant_id"]])
        sent = [r for r in sim.requests() if "/registrants" in r["path"]]
        assert [r["method"] for r in sent] == ["POST", "GET", "PUT"]
        assert_request_ok(ADD, sent[0]["json"])
        assert_request_ok(STATUS, sent[2]["json"])
        params = {p["name"]: p["schema"] for p in openapi.load_spec()["paths"][LIST[0]]["get"]["parameters"]}
        assert set(sent[1]["query"]) <= set(params)
        assert sent[1]["query"]["status"] in params["status"]["enum"]
        assert int(sent[1]["query"]["page_size"]) <= params["page_size"]["maximum"]
        assert all(r["status"] < 300 for r in sent)


class TestSimulatorAnswers:
    def test_add_list_and_cancel(self, sim: ZoomSimulator, client: ZoomClient) -> None:
        meeting = client.create_meeting(HOST, create_body())
        added = client.add_registrant(meeting["id"], **_names("Ada Lovelace", "ada.patient@example.org"))
        assert response_errors(*ADD, 201, added) == []
        assert added["id"] == meeting["id"] and added["registrant_id"]
        # A link of the patient's own, distinct from the meeting's shared one.
        assert added["join_url"] != meeting["join_url"] and "tk=" in added["join_url"]
        other = client.add_registrant(meeting["id"], **_names("Grace Hopper", "grace@example.org"))
        assert other["join_url"] != added["join_url"]
        # The same address again is the same registration (as Zoom answers), not a second one.
        again = client.add_registrant(meeting["id"], **_names("Ada Lovelace", "ADA.patient@example.org"))
        assert again["registrant_id"] == added["registrant_id"] and again["join_url"] == added["join_url"]

        listed = requests.get(f"{sim.api_url}/meetings/{meeting['id']}/registrants",
                              headers=_auth(sim), params={"page_size": 1}, timeout=5)
        assert listed.status_code == 200 and response_errors(*LIST, 200, listed.json()) == []
        assert listed.json()["total_records"] == 2 and listed.json()["next_page_token"]
        assert len(client.list_registrants(meeting["id"])) == 2

        assert sim.join_check(added["join_url"]) == (True, "approved registrant")
        client.cancel_registrants(meeting["id"], [added["registrant_id"]])
        assert sim.join_check(added["join_url"]) == (False, "registration cancelled")
        assert sim.join_check(other["join_url"])[0] is True
        assert [r["email"] for r in client.list_registrants(meeting["id"])] == ["grace@example.org"]
        client.delete_meeting(meeting["id"])
        assert sim.join_check(other["join_url"]) == (False, "meeting deleted")

    def test_basic_host_is_refused_as_zoom_refuses(self, sim: ZoomSimulator, client: ZoomClient) -> None:
        sim.set_basic_user(HOST)
        meeting = client.create_meeting(HOST, create_body())
        answer = requests.post(f"{sim.api_url}/meetings/{meeting['id']}/registrants", headers=_auth(sim),
                               json=_names("Ada Lovelace", "ada@example.org"), timeout=5)
        assert answer.status_code == 400 and answer.json()["code"] == 200
        assert answer.json()["message"].startswith("Only available for Paid user")
        assert_error_ok(ADD, answer.json(), answer.status_code)
        with pytest.raises(ZoomPermanentError) as refused:
            client.add_registrant(meeting["id"], **_names("Ada Lovelace", "ada@example.org"))
        assert policy.registration_refused(refused.value.status, refused.value.code)

    def test_registration_locked_off_by_the_account(self, sim: ZoomSimulator, client: ZoomClient) -> None:
        sim.lock_setting("approval_type", 2)
        body = create_body()
        meeting = client.create_meeting(HOST, body)
        assert not policy.registration_open(meeting)
        assert policy.check_settings(body, meeting) == []  # a fallback, not a weaker meeting
        with pytest.raises(ZoomPermanentError) as refused:
            client.add_registrant(meeting["id"], **_names("Ada Lovelace", "ada@example.org"))
        assert (refused.value.status, refused.value.code) == (400, 3000)
        assert policy.registration_refused(refused.value.status, refused.value.code)

    def test_error_answers(self, sim: ZoomSimulator, client: ZoomClient) -> None:
        url = f"{sim.api_url}/meetings/85746065123/registrants"
        missing = requests.post(url, headers=_auth(sim), json=_names("A B", "a@example.org"), timeout=5)
        assert missing.status_code == 404 and missing.json()["code"] == 1001
        assert_error_ok(ADD, missing.json(), 404)
        gone = requests.put(url + "/status", headers=_auth(sim), json={"action": "cancel", "registrants": []},
                            timeout=5)
        assert gone.status_code == 404 and gone.json()["code"] == 3001
        assert_error_ok(STATUS, gone.json(), 404)
        meeting = client.create_meeting(HOST, create_body())
        bad = requests.post(f"{sim.api_url}/meetings/{meeting['id']}/registrants", headers=_auth(sim),
                            json={"email": "a@example.org"}, timeout=5)
        assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "first_name"
        assert_error_ok(ADD, bad.json(), 400)
        bad_action = requests.put(f"{sim.api_url}/meetings/{meeting['id']}/registrants/status",
                                  headers=_auth(sim), json={"action": "remove"}, timeout=5)
        assert bad_action.status_code == 400
        assert request_errors(*STATUS, {"action": "remove"}) != []  # the spec refuses it too

    def test_rate_limit_categories(self, sim: ZoomSimulator, client: ZoomClient) -> None:
        """Adding is LIGHT, listing and status changes MEDIUM, as Zoom labels them; none
        counts against the host's daily create/update cap."""
        meeting = client.create_meeting(HOST, create_body())
        sim.daily_limit = 0  # the host's create/update cap is used up
        sim.rate_limits = {"Medium": 1, "Light": 1}
        try:
            threading_wait(1.05)
            assert requests.get(f"{sim.api_url}/meetings/{meeting['id']}/registrants", headers=_auth(sim),
                                timeout=5).status_code == 200
            added = requests.post(f"{sim.api_url}/meetings/{meeting['id']}/registrants", headers=_auth(sim),
                                  json=_names("A B", "a@example.org"), timeout=5)
            assert added.status_code == 201  # another category than the list just made
            second = requests.get(f"{sim.api_url}/meetings/{meeting['id']}/registrants", headers=_auth(sim),
                                  timeout=5)
            assert second.status_code == 429 and second.headers["X-RateLimit-Category"] == "Medium"
        finally:
            sim.rate_limits = {}
            sim.daily_limit = None


def _names(name: str, email: str) -> dict[str, str]:
    return policy.build_registrant_request(name, email)


def _auth(sim: ZoomSimulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.issue_token()}"}


def threading_wait(seconds: float) -> None:
    import threading

    threading.Event().wait(seconds)
