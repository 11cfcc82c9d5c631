"""The simulator's newer Zoom behaviour: user OAuth with rotation, rate limits, faults."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from telemed.zoom.simulator import ZoomSimulator
from telemed.zoom.simulator.chaos import ChaosError, chaos_from_env, parse_chaos

pytestmark = pytest.mark.integration
REDIRECT = "http://127.0.0.1:9/cb"


@pytest.fixture
def sim(shared_sim: ZoomSimulator) -> Iterator[ZoomSimulator]:
    shared_sim.reset()
    shared_sim.authorize_as("ada@clinic.example")
    yield shared_sim
    shared_sim.set_chaos(None)
    shared_sim.rate_limits = {}
    shared_sim.daily_limit = None


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def authorize(sim: ZoomSimulator, **overrides: str) -> requests.Response:
    params = {"response_type": "code", "client_id": sim.oauth_client_id, "redirect_uri": REDIRECT, "state": "xyz"}
    params.update(overrides)
    return requests.get(f"{sim.oauth_url}/authorize", params=params, allow_redirects=False, timeout=5)


def back(answer: requests.Response) -> dict[str, str]:
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def token(sim: ZoomSimulator, auth: tuple[str, str] | None = None, **form: str) -> requests.Response:
    return requests.post(f"{sim.oauth_url}/token", data=form,
                         auth=auth or (sim.oauth_client_id, sim.oauth_client_secret), timeout=5)


def future() -> str:
    return (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")


class TestAuthorizationCode:
    def test_approve_exchange_and_single_use(self, sim: ZoomSimulator) -> None:
        verifier, challenge = pkce()
        answer = back(authorize(sim, code_challenge=challenge, code_challenge_method="S256"))
        assert answer["state"] == "xyz" and answer["code"]
        granted = token(sim, grant_type="authorization_code", code=answer["code"], redirect_uri=REDIRECT,
                        code_verifier=verifier)
        assert granted.status_code == 200
        body = granted.json()
        assert body["refresh_token"] and body["access_token"] and body["expires_in"] == 3600
        replay = token(sim, grant_type="authorization_code", code=answer["code"], redirect_uri=REDIRECT,
                       code_verifier=verifier)
        assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
        # The user's token acts as that user: "me" is ada, and it only sees ada's meetings.
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        created = requests.post(f"{sim.api_url}/users/me/meetings", json={"start_time": future()},
                                headers=headers, timeout=5)
        assert created.json()["host_email"] == "ada@clinic.example"
        other = requests.post(f"{sim.api_url}/users/grace%40clinic.example/meetings",
                              json={"start_time": future()}, headers=headers, timeout=5)
        assert (other.status_code, other.json()["code"]) == (404, 1001)
        foreign = requests.post(f"{sim.api_url}/users/grace%40clinic.example/meetings",
                                json={"start_time": future()},
                                headers={"Authorization": f"Bearer {sim.issue_token()}"}, timeout=5)
        assert requests.get(f"{sim.api_url}/meetings/{foreign.json()['id']}", headers=headers,
                            timeout=5).status_code == 404
        # ...and the doctor's own account is not the app's: the account token cannot see it.
        account = {"Authorization": f"Bearer {sim.issue_token()}"}
        assert requests.get(f"{sim.api_url}/meetings/{created.json()['id']}", headers=account,
                            timeout=5).status_code == 404
        assert requests.get(f"{sim.api_url}/meetings/{created.json()['id']}", headers=headers,
                            timeout=5).status_code == 200

    @pytest.mark.parametrize("problem", ["verifier", "redirect", "expired", "unknown"])
    def test_bad_exchanges_are_invalid_grant(self, sim: ZoomSimulator, problem: str) -> None:
        verifier, challenge = pkce()
        if problem == "expired":
            sim.state.oauth_book.code_lifetime_seconds = 0.05
        code = back(authorize(sim, code_challenge=challenge, code_challenge_method="S256"))["code"]
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
        if problem == "verifier":
            form["code_verifier"] = pkce()[0]
        elif problem == "redirect":
            form["redirect_uri"] = "http://127.0.0.1:9/elsewhere"
        elif problem == "unknown":
            form["code"] = "made-up"
        else:
            time.sleep(0.1)
        try:
            answer = token(sim, **form)
        finally:
            sim.state.oauth_book.code_lifetime_seconds = 300
        assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant")
        assert sim.stats()["counters"]["invalid_grant"] == 1 and sim.grants == 0

    def test_denied_consent_and_bad_requests(self, sim: ZoomSimulator) -> None:
        sim.authorize_as("ada@clinic.example", approve=False)
        assert back(authorize(sim)) == {"state": "xyz", "error": "access_denied"}
        sim.authorize_as("ada@clinic.example")
        assert back(authorize(sim, response_type="token"))["error"] == "unsupported_response_type"
        assert back(authorize(sim, code_challenge="x", code_challenge_method="MD5"))["error"] == "invalid_request"
        assert authorize(sim, client_id="someone-else").status_code == 400
        assert authorize(sim, redirect_uri="javascript:alert(1)").status_code == 400

    def test_app_credentials_are_separate(self, sim: ZoomSimulator) -> None:
        code = back(authorize(sim))["code"]
        wrong_app = token(sim, auth=(sim.client_id, sim.client_secret), grant_type="authorization_code",
                          code=code, redirect_uri=REDIRECT)
        assert (wrong_app.status_code, wrong_app.json()["error"]) == (401, "invalid_client")
        s2s = token(sim, auth=(sim.oauth_client_id, sim.oauth_client_secret), grant_type="account_credentials",
                    account_id=sim.account_id)
        assert s2s.status_code == 401


class TestRefreshRotation:
    def grant(self, sim: ZoomSimulator) -> dict[str, Any]:
        code = back(authorize(sim))["code"]
        body: dict[str, Any] = token(sim, grant_type="authorization_code", code=code, redirect_uri=REDIRECT).json()
        return body

    def test_each_refresh_rotates_and_reuse_is_invalid_grant(self, sim: ZoomSimulator) -> None:
        first = self.grant(sim)
        second = token(sim, grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
        assert second["refresh_token"] != first["refresh_token"]
        reused = token(sim, grant_type="refresh_token", refresh_token=first["refresh_token"])
        assert (reused.status_code, reused.json()) == (400, {"reason": "Invalid Token!", "error": "invalid_grant"})
        third = token(sim, grant_type="refresh_token", refresh_token=second["refresh_token"])
        assert third.status_code == 200  # the newest still works
        assert sim.grants_of("refresh_token") == 2 and sim.grants_of("authorization_code") == 1

    def test_revoked_user_loses_every_token(self, sim: ZoomSimulator) -> None:
        body = self.grant(sim)
        answer = requests.post(f"{sim.base_url}/_sim/revoke", json={"user": "ADA@clinic.example"}, timeout=5)
        assert answer.json() == {"refresh_tokens": 1, "access_tokens": 1}
        assert token(sim, grant_type="refresh_token", refresh_token=body["refresh_token"]).status_code == 400
        listed = requests.get(f"{sim.api_url}/users/me/meetings",
                              headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=5)
        assert (listed.status_code, listed.json()["code"]) == (401, 124)

    def test_configurable_lifetime(self, sim: ZoomSimulator) -> None:
        answer = requests.post(f"{sim.base_url}/_sim/config", json={"token_lifetime_seconds": 5}, timeout=5)
        try:
            assert answer.json()["token_lifetime_seconds"] == 5
            assert self.grant(sim)["expires_in"] == 5
        finally:
            sim.token_lifetime_seconds = 3600
        assert requests.post(f"{sim.base_url}/_sim/config", json={"token_lifetime_seconds": -1},
                             timeout=5).status_code == 400


class TestRateLimits:
    def test_per_second_limit_per_category(self, sim: ZoomSimulator) -> None:
        sim.rate_limits = {"Medium": 2, "Light": 3}
        headers = {"Authorization": f"Bearer {sim.issue_token()}"}
        lists = [requests.get(f"{sim.api_url}/users/me/meetings", headers=headers, timeout=5) for _ in range(3)]
        assert [a.status_code for a in lists] == [200, 200, 429]
        limited = lists[2]
        assert limited.json() == {"code": 429, "message": "You have reached the maximum per-second rate "
                                  "limit for this API. Try again later."}
        assert limited.headers["X-RateLimit-Category"] == "Medium" and limited.headers["X-RateLimit-Type"] == "QPS"
        gets = [requests.get(f"{sim.api_url}/meetings/1", headers=headers, timeout=5).status_code for _ in range(4)]
        assert gets == [404, 404, 404, 429]  # Light has its own window
        time.sleep(1.05)
        assert requests.get(f"{sim.api_url}/users/me/meetings", headers=headers, timeout=5).status_code == 200
        assert sim.stats()["counters"]["rate_limited.qps"] == 2

    def test_daily_cap_answer(self, sim: ZoomSimulator) -> None:
        sim.daily_limit = 1
        headers = {"Authorization": f"Bearer {sim.issue_token()}"}
        url = f"{sim.api_url}/users/me/meetings"
        assert requests.post(url, json={"start_time": future()}, headers=headers, timeout=5).status_code == 201
        capped = requests.post(url, json={"start_time": future()}, headers=headers, timeout=5)
        assert capped.status_code == 429 and "daily rate limit (1)" in capped.json()["message"]
        assert capped.headers["X-RateLimit-Type"] == "Daily-limit"
        assert capped.headers["X-RateLimit-Limit"] == "1" and capped.headers["X-RateLimit-Remaining"] == "0"
        reset = datetime.fromisoformat(capped.headers["Retry-After"].replace("Z", "+00:00"))
        assert reset.hour == 0 and reset.minute == 0 and reset > datetime.now(UTC)


class TestFaults:
    def test_scripted_connection_faults(self, sim: ZoomSimulator) -> None:
        headers = {"Authorization": f"Bearer {sim.issue_token()}"}
        url = f"{sim.api_url}/users/me/meetings"
        sim.inject_fault("drop", method="POST")
        with pytest.raises(requests.ConnectionError):
            requests.post(url, json={"start_time": future()}, headers=headers, timeout=5)
        assert len(sim.meetings()) == 1  # created, though the answer never arrived
        sim.inject_fault("reset", method="GET")
        with pytest.raises(requests.ConnectionError):
            requests.get(url, headers=headers, timeout=5)
        sim.state.chaos = parse_chaos({"timeout_seconds": 2})  # how long a held request hangs
        requests.post(f"{sim.base_url}/_sim/faults", json={"action": "timeout", "method": "GET"}, timeout=5)
        with pytest.raises(requests.ReadTimeout):
            requests.get(url, headers=headers, timeout=0.5)
        assert [e.get("fault") for e in sim.requests()] == ["drop", "reset", "timeout"]
        assert requests.post(f"{sim.base_url}/_sim/faults", json={"action": "explode"}, timeout=5).status_code == 400

    def test_chaos_profile_over_http(self, sim: ZoomSimulator) -> None:
        profile = {"error_rate": 0.5, "rate_limit_rate": 0.5, "seed": 3,
                   "latency": {"kind": "uniform", "low": 0.0, "high": 0.01}}
        assert requests.post(f"{sim.base_url}/_sim/chaos", json=profile, timeout=5).status_code == 204
        shown = requests.get(f"{sim.base_url}/_sim/chaos", timeout=5).json()["chaos"]
        assert shown["error_rate"] == 0.5 and shown["latency"]["kind"] == "uniform"
        headers = {"Authorization": f"Bearer {sim.issue_token()}"}
        statuses = [requests.get(f"{sim.api_url}/meetings/1", headers=headers, timeout=5).status_code
                    for _ in range(20)]
        assert set(statuses) <= {429, 500, 502, 503, 504} and 429 in statuses
        # OAuth is spared unless asked for: token renewal is not what a retry test tests.
        assert token(sim, auth=(sim.client_id, sim.client_secret), grant_type="account_credentials",
                     account_id=sim.account_id).status_code == 200
        assert requests.delete(f"{sim.base_url}/_sim/chaos", timeout=5).status_code == 204
        assert requests.get(f"{sim.api_url}/meetings/1", headers=headers, timeout=5).status_code == 404
        bad = requests.post(f"{sim.base_url}/_sim/chaos", json={"error_rate": 2}, timeout=5)
        assert bad.status_code == 400 and "chaos.error_rate" in bad.json()["message"]

    def test_drop_after_create_only_hits_creates(self, sim: ZoomSimulator) -> None:
        sim.set_chaos({"drop_after_create_rate": 1.0})
        headers = {"Authorization": f"Bearer {sim.issue_token()}"}
        assert requests.get(f"{sim.api_url}/users/me/meetings", headers=headers, timeout=5).status_code == 200
        with pytest.raises(requests.ConnectionError):
            requests.post(f"{sim.api_url}/users/me/meetings", json={"start_time": future()}, headers=headers,
                          timeout=5)
        assert len(sim.meetings()) == 1


def test_chaos_parsing_names_the_field() -> None:
    assert chaos_from_env({}) is None
    profile = chaos_from_env({"ZOOM_SIM_CHAOS": json.dumps({"timeout_rate": 0.1, "latency": 0.2})})
    assert profile is not None and profile.timeout_rate == 0.1 and profile.delay() == 0.2
    for spec, field in [
        ({"error_rate": "high"}, "chaos.error_rate"),
        ({"error_rate": 0.7, "reset_rate": 0.7}, "add up"),
        ({"latency": {"kind": "gamma"}}, "chaos.latency.kind"),
        ({"latency": {"kind": "uniform", "low": 2, "high": 1}}, "chaos.latency.low"),
        ({"latency": {"kind": "fixed", "mean": 1}}, "chaos.latency.mean"),
        ({"errors": 1}, "chaos.errors"),
        ({"seed": 1.5}, "chaos.seed"),
    ]:
        with pytest.raises(ChaosError, match=field.replace(".", r"\.")):
            parse_chaos(spec)
    with pytest.raises(ChaosError, match="ZOOM_SIM_CHAOS"):
        chaos_from_env({"ZOOM_SIM_CHAOS": "{nope"})
