"""The simulator's several Zoom accounts, over HTTP: each server-to-server app gets tokens
for its own account, sees that account's meetings only, and Zoom's per-second limits and
per-host daily quotas are counted per account; a revoked app is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from telemed.zoom.simulator import ZoomSimulator

pytestmark = pytest.mark.integration
HOST = "ada@clinic.example"


@pytest.fixture
def sim(shared_sim: ZoomSimulator) -> ZoomSimulator:
    shared_sim.reset()
    shared_sim.rate_limits, shared_sim.daily_limit = {}, None  # each test sets its own
    return shared_sim


def account_token(sim: ZoomSimulator, client_id: str, secret: str, account_id: str) -> requests.Response:
    return requests.post(f"{sim.oauth_url}/token", auth=(client_id, secret), timeout=5,
                         data={"grant_type": "account_credentials", "account_id": account_id})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create(sim: ZoomSimulator, token: str, host: str = HOST) -> requests.Response:
    start = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return requests.post(f"{sim.api_url}/users/{host}/meetings", json={"type": 2, "start_time": start},
                         headers=bearer(token), timeout=5)


def test_each_app_gets_tokens_for_its_own_account(sim: ZoomSimulator) -> None:
    b = sim.add_account("acct-b")
    token_a = account_token(sim, sim.client_id, sim.client_secret, sim.account_id).json()["access_token"]
    token_b = account_token(sim, b.client_id, b.client_secret, "acct-b").json()["access_token"]
    # B's app cannot get a token for A's account, nor A's app for B's.
    assert account_token(sim, b.client_id, b.client_secret, sim.account_id).status_code == 400
    assert account_token(sim, sim.client_id, sim.client_secret, "acct-b").status_code == 400
    assert account_token(sim, b.client_id, "wrong", "acct-b").status_code == 401

    made_a = create(sim, token_a).json()
    made_b = create(sim, token_b).json()
    assert {m["id"]: m["account"] for m in sim.meetings()} == {made_a["id"]: sim.account_id,
                                                               made_b["id"]: "acct-b"}
    assert [m["id"] for m in sim.meetings(account="acct-b")] == [made_b["id"]]
    # Each account sees its own meetings only.
    assert requests.get(f"{sim.api_url}/meetings/{made_a['id']}", headers=bearer(token_b), timeout=5).status_code == 404
    listed = requests.get(f"{sim.api_url}/users/{HOST}/meetings", headers=bearer(token_b), timeout=5).json()
    assert [m["id"] for m in listed["meetings"]] == [made_b["id"]]
    assert [g["account"] for g in sim.grant_log("account")] == [sim.account_id, "acct-b"]
    assert sim.account_stats()["acct-b"] == {"grant.account": 1, "meetings.created": 1}


def test_per_second_limits_are_counted_per_account(sim: ZoomSimulator) -> None:
    sim.rate_limits = {"Medium": 2, "Light": 30}
    b = sim.add_account("acct-b")
    token_a = sim.issue_token()
    token_b = sim.issue_token(account=b.account_id)
    statuses_a = [create(sim, token_a).status_code for _ in range(3)]
    statuses_b = [create(sim, token_b).status_code for _ in range(2)]
    assert statuses_a == [201, 201, 429]  # A's third within the second is refused...
    assert statuses_b == [201, 201]  # ...while B's account has its own window
    assert sim.account_stats()[sim.account_id]["rate_limited.qps"] == 1
    assert "rate_limited.qps" not in sim.account_stats()["acct-b"]


def test_an_accounts_plan_may_set_its_own_limits(sim: ZoomSimulator) -> None:
    sim.rate_limits = {"Medium": 2}
    c = sim.add_account("acct-c", rate_limits={"Medium": 5}, daily_limit=1)
    token = sim.issue_token(account=c.account_id)
    assert [create(sim, token, host=f"h{i}@clinic.example").status_code for i in range(4)] == [201] * 4
    assert create(sim, token, host="h0@clinic.example").status_code == 429  # its daily quota of 1


def test_daily_quotas_are_per_account_and_host(sim: ZoomSimulator) -> None:
    sim.daily_limit = 2
    b = sim.add_account("acct-b")
    token_a, token_b = sim.issue_token(), sim.issue_token(account=b.account_id)
    assert [create(sim, token_a).status_code for _ in range(3)] == [201, 201, 429]
    assert create(sim, token_b).status_code == 201  # the same e-mail in another account: its own count
    assert sim.state.daily_used(HOST, sim.account_id) == 2 and sim.state.daily_used(HOST, "acct-b") == 1
    assert sim.state.daily_used(HOST) == 3
    assert sim.account_stats()[sim.account_id]["rate_limited.daily"] == 1


def test_a_revoked_app_is_refused_and_its_tokens_die(sim: ZoomSimulator) -> None:
    b = sim.add_account("acct-b")
    token_a = sim.issue_token()
    token_b = account_token(sim, b.client_id, b.client_secret, "acct-b").json()["access_token"]
    assert sim.revoke_app(b.client_id) == 1
    refused = account_token(sim, b.client_id, b.client_secret, "acct-b")
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    dead = create(sim, token_b)
    assert (dead.status_code, dead.json()["code"]) == (401, 124)
    assert create(sim, token_a).status_code == 201  # the other account goes on


def test_oauth_apps_are_apart(sim: ZoomSimulator) -> None:
    other = sim.add_oauth_app("clinic-b-oauth", "clinic-b-secret")
    redirect = "https://telemed.example/oauth/zoom/callback"

    def code_through(client_id: str) -> str:
        answer = requests.get(f"{sim.oauth_url}/authorize", allow_redirects=False, timeout=5, params={
            "response_type": "code", "client_id": client_id, "redirect_uri": redirect})
        return answer.headers["Location"].split("code=")[1].split("&")[0]

    def exchange(code: str, auth: tuple[str, str]) -> requests.Response:
        return requests.post(f"{sim.oauth_url}/token", auth=auth, timeout=5, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect})

    # A code issued through B's app cannot be redeemed by the default app, and vice versa.
    assert exchange(code_through(other.client_id), (sim.oauth_client_id, sim.oauth_client_secret)).status_code == 400
    granted = exchange(code_through(other.client_id), (other.client_id, other.client_secret))
    assert granted.status_code == 200
    refresh = granted.json()["refresh_token"]
    reused_elsewhere = requests.post(f"{sim.oauth_url}/token", auth=(sim.oauth_client_id, sim.oauth_client_secret),
                                     data={"grant_type": "refresh_token", "refresh_token": refresh}, timeout=5)
    assert reused_elsewhere.json()["error"] == "invalid_grant"
    sim.revoke_app(other.client_id)
    assert requests.get(f"{sim.oauth_url}/authorize", allow_redirects=False, timeout=5, params={
        "response_type": "code", "client_id": other.client_id, "redirect_uri": redirect}).status_code == 400


def test_accounts_over_the_admin_api(sim: ZoomSimulator) -> None:
    added = requests.post(f"{sim.base_url}/_sim/accounts", json={"account_id": "acct-x", "daily_limit": 5},
                          timeout=5)
    assert added.status_code == 201
    app = added.json()
    assert account_token(sim, app["client_id"], app["client_secret"], "acct-x").status_code == 200
    listed = requests.get(f"{sim.base_url}/_sim/accounts", timeout=5).json()["accounts"]
    assert {"account_id": "acct-x", "client_id": app["client_id"], "revoked": False} in listed
    assert app["client_secret"] not in str(listed)  # never a secret in a listing
    assert requests.post(f"{sim.base_url}/_sim/apps/revoke", json={"client_id": app["client_id"]},
                         timeout=5).json() == {"access_tokens": 1}
    assert requests.post(f"{sim.base_url}/_sim/apps/revoke", json={"client_id": "nope"}, timeout=5).status_code == 404
    assert requests.post(f"{sim.base_url}/_sim/accounts", json={"account_id": 5}, timeout=5).status_code == 400
    sim.reset()  # a reset forgets added accounts, as a fresh simulator
    assert [a["account_id"] for a in requests.get(f"{sim.base_url}/_sim/accounts", timeout=5).json()["accounts"]] == [
        sim.account_id]
