"""The simulator's grant log: when each access token was handed out, on the state's clock.

Item 4 of the benchmarks counts grants per token lifetime from these timestamps; the request
log cannot serve (it drops old entries under load, and ``issue_token`` bypasses HTTP)."""

from __future__ import annotations

from telemed.zoom.simulator import ZoomSimulator
from telemed.zoom.simulator.records import Credentials
from telemed.zoom.simulator.state import SimState


def _state(now: list[float], log_limit: int = 10) -> SimState:
    return SimState(credentials=Credentials("c", "s", "a"), token_lifetime_seconds=5.0,
                    default_host_email="host@sim.example", clock=lambda: now[0], log_limit=log_limit)


def test_each_grant_is_logged_with_its_time_kind_user_account_and_expiry() -> None:
    now = [1000.0]
    state = _state(now)
    state.issue_token(kind="account")
    now[0] = 1004.5
    token = state.issue_token(user="ada@clinic.example", kind="refresh_token")
    assert state.grant_history() == [
        {"at": 1000.0, "kind": "account", "user": None, "account": "a", "expires_at": 1005.0},
        {"at": 1004.5, "kind": "refresh_token", "user": "ada@clinic.example", "account": "user:ada@clinic.example",
         "expires_at": 1009.5},
    ]
    assert token not in str(state.grant_history())  # times and kinds, never the token


def test_the_grant_log_is_bounded_and_cleared_by_reset() -> None:
    now = [0.0]
    state = _state(now, log_limit=3)
    for second in range(5):
        now[0] = float(second)
        state.issue_token()
    assert [g["at"] for g in state.grant_history()] == [2.0, 3.0, 4.0]
    assert state.grants == 5  # the counters still count every grant
    state.reset()
    assert state.grant_history() == []


def test_the_simulator_filters_its_grant_log_by_kind() -> None:
    sim = ZoomSimulator(token_lifetime_seconds=60)  # not started: issue_token needs no server
    sim.issue_token()
    sim.issue_token("Ada@Clinic.example")
    assert [g["kind"] for g in sim.grant_log()] == ["account", "account"]
    assert [g["user"] for g in sim.grant_log("account")] == [None, "ada@clinic.example"]
    assert sim.grant_log("refresh_token") == []
