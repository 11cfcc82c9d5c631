"""The ``/_sim/`` admin API: inspect and steer the simulator over HTTP (tests, demo)."""

from __future__ import annotations

import re
from typing import Any

from telemed.zoom.simulator.chaos import ChaosError, parse_chaos
from telemed.zoom.simulator.records import Fault
from telemed.zoom.simulator.state import SimState
from telemed.zoom.simulator.wire import Handler, SimRequest, SimResponse, error

FAULT_ACTIONS = ("respond", "reset", "timeout", "drop")


def meetings(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    return SimResponse(200, {"meetings": state.meeting_views()})


def requests_log(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    return SimResponse(200, {"requests": state.request_log()})


def stats_of(state: SimState) -> dict[str, Any]:
    views = state.meeting_views()
    with state.lock:
        counters = dict(state.counters)
    return {
        "grants": state.grants,
        "meetings": sum(1 for v in views if not v["deleted"]),
        "deleted": sum(1 for v in views if v["deleted"]),
        "requests": len(state.request_log()),
        "counters": dict(sorted(counters.items())),
        "accounts": state.account_stats(),
    }


def stats(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    return SimResponse(200, stats_of(state))


def reset(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    state.reset()
    return SimResponse(204)


def expire(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    state.expire_tokens()
    return SimResponse(204)


def fault(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    spec = request.json
    action = spec.get("action", "respond") if isinstance(spec, dict) else None
    if action not in FAULT_ACTIONS or (action == "respond" and not isinstance(spec.get("status"), int)):
        return error(
            400,
            300,
            'Expected {"action"?: respond|reset|timeout|drop, "status": int (for respond), '
            '"body"?, "headers"?, "count"?, "method"?, "path_prefix"?}.',
        )
    state.add_fault(
        Fault(
            status=spec.get("status", 0),
            body=spec.get("body"),
            headers={str(k): str(v) for k, v in (spec.get("headers") or {}).items()},
            count=int(spec.get("count", 1)),
            method=spec.get("method"),
            path_prefix=spec.get("path_prefix"),
            action=action,
        )
    )
    return SimResponse(204)


def chaos(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    """POST a profile to switch random faults on; DELETE switches them off; GET shows it."""
    if request.method == "DELETE":
        state.chaos = None
        return SimResponse(204)
    if request.method == "POST":
        try:
            profile = parse_chaos(request.json)
        except ChaosError as bad:
            return error(400, 300, str(bad))
        state.chaos = profile if profile.active else None
        return SimResponse(204)
    return SimResponse(200, {"chaos": state.chaos.describe() if state.chaos else None})


def authorize_mode(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    """``{"approve": bool, "user": email}``: how the next consent screens are answered."""
    spec = request.json
    if not isinstance(spec, dict) or not isinstance(spec.get("approve", True), bool):
        return error(400, 300, 'Expected {"approve": bool, "user"?: email}.')
    state.oauth_book.approve = spec.get("approve", True)
    if isinstance(spec.get("user"), str) and "@" in spec["user"]:
        state.oauth_book.approving_user = spec["user"].lower()
    return SimResponse(204)


def revoke(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    """``{"user": email}``: the user removed the app; their grants die."""
    spec = request.json
    if not isinstance(spec, dict) or not isinstance(spec.get("user"), str):
        return error(400, 300, 'Expected {"user": email}.')
    user = spec["user"].lower()
    refresh = state.oauth_book.revoke_user(user)
    access = state.revoke_user_tokens(user)
    return SimResponse(200, {"refresh_tokens": refresh, "access_tokens": access})


def config(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    """``{"token_lifetime_seconds"?, "daily_limit"?, "rate_limits"?}`` (null: unlimited)."""
    spec = request.json
    if not isinstance(spec, dict):
        return error(400, 300, "Expected an object.")
    if "token_lifetime_seconds" in spec:
        value = spec["token_lifetime_seconds"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            return error(400, 300, "token_lifetime_seconds: must be a positive number.")
        state.token_lifetime_seconds = float(value)
    if "daily_limit" in spec:
        value = spec["daily_limit"]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            return error(400, 300, "daily_limit: must be a non-negative integer or null.")
        state.daily_limit = value
    if "rate_limits" in spec:
        value = spec["rate_limits"] or {}
        if not isinstance(value, dict) or any(
            isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0 for v in value.values()
        ):
            return error(400, 300, "rate_limits: must map categories to positive numbers.")
        state.rate_windows.per_second = {str(k): float(v) for k, v in value.items()}
    return SimResponse(
        200,
        {
            "token_lifetime_seconds": state.token_lifetime_seconds,
            "daily_limit": state.daily_limit,
            "rate_limits": dict(state.rate_windows.per_second),
        },
    )


def accounts(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    """GET: the server-to-server apps (client and account ids, revoked; never a secret).
    POST ``{"account_id", "client_id"?, "client_secret"?, "rate_limits"?, "daily_limit"?}``
    adds an account with its app and answers its credentials."""
    if request.method == "GET":
        return SimResponse(200, {"accounts": [
            {"account_id": a.account_id, "client_id": a.client_id, "revoked": a.revoked}
            for a in state.apps.accounts()]})
    spec = request.json
    if not isinstance(spec, dict) or not isinstance(spec.get("account_id"), str):
        return error(400, 300, 'Expected {"account_id": str, "client_id"?, "client_secret"?, "rate_limits"?, '
                               '"daily_limit"?}.')
    limits = spec.get("rate_limits")
    daily = spec.get("daily_limit")
    if limits is not None and (not isinstance(limits, dict) or any(
            isinstance(v, bool) or not isinstance(v, (int, float)) for v in limits.values())):
        return error(400, 300, "rate_limits: must map categories to positive numbers.")
    if daily is not None and (isinstance(daily, bool) or not isinstance(daily, int)):
        return error(400, 300, "daily_limit: must be a non-negative integer or null.")
    try:
        app = state.apps.add_account(spec["account_id"], spec.get("client_id"), spec.get("client_secret"),
                                     rate_limits=limits, daily_limit=daily)
    except ValueError as bad:
        return error(400, 300, str(bad))
    return SimResponse(201, {"account_id": app.account_id, "client_id": app.client_id,
                             "client_secret": app.client_secret})


def oauth_apps(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    """``{"client_id"?, "client_secret"?}``: another user-managed OAuth app."""
    spec = request.json if isinstance(request.json, dict) else {}
    try:
        app = state.apps.add_oauth_app(spec.get("client_id"), spec.get("client_secret"))
    except ValueError as bad:
        return error(400, 300, str(bad))
    return SimResponse(201, {"client_id": app.client_id, "client_secret": app.client_secret})


def revoke_app(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    """``{"client_id"}``: deactivate an app; its grants and access tokens stop working."""
    spec = request.json
    if not isinstance(spec, dict) or not isinstance(spec.get("client_id"), str):
        return error(400, 300, 'Expected {"client_id": str}.')
    try:
        dropped = state.revoke_app(spec["client_id"])
    except LookupError:
        return error(404, 404, "No such app.")
    return SimResponse(200, {"access_tokens": dropped})


def lock(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    if not isinstance(request.json, dict):
        return error(400, 300, "Expected an object of setting names to values.")
    for name, value in request.json.items():
        state.lock_setting(str(name), value)
    return SimResponse(204)


def users(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    """``{"email": ..., "type": 1|2}``: 1 makes the user Basic (no registration), 2 licensed."""
    spec = request.json
    if not isinstance(spec, dict) or not isinstance(spec.get("email"), str) or spec.get("type") not in (1, 2):
        return error(400, 300, 'Expected {"email": str, "type": 1 (Basic) | 2 (Licensed)}.')
    state.set_basic_user(spec["email"], basic=spec["type"] == 1)
    return SimResponse(204)


def join(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    """``{"url": registrant join URL}``: would Zoom let its holder in now?"""
    spec = request.json
    if not isinstance(spec, dict) or not isinstance(spec.get("url"), str):
        return error(400, 300, 'Expected {"url": str}.')
    admitted, reason = state.join_check(spec["url"])
    return SimResponse(200 if admitted else 403, {"admitted": admitted, "reason": reason})


ADMIN_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    ("GET", re.compile(r"/_sim/meetings"), meetings),
    ("GET", re.compile(r"/_sim/requests"), requests_log),
    ("GET", re.compile(r"/_sim/stats"), stats),
    ("POST", re.compile(r"/_sim/reset"), reset),
    ("POST", re.compile(r"/_sim/expire-tokens"), expire),
    ("POST", re.compile(r"/_sim/faults"), fault),
    ("POST", re.compile(r"/_sim/lock-settings"), lock),
    ("GET", re.compile(r"/_sim/chaos"), chaos),
    ("POST", re.compile(r"/_sim/chaos"), chaos),
    ("DELETE", re.compile(r"/_sim/chaos"), chaos),
    ("POST", re.compile(r"/_sim/authorize"), authorize_mode),
    ("POST", re.compile(r"/_sim/revoke"), revoke),
    ("GET", re.compile(r"/_sim/accounts"), accounts),
    ("POST", re.compile(r"/_sim/accounts"), accounts),
    ("POST", re.compile(r"/_sim/oauth-apps"), oauth_apps),
    ("POST", re.compile(r"/_sim/apps/revoke"), revoke_app),
    ("POST", re.compile(r"/_sim/config"), config),
    ("POST", re.compile(r"/_sim/users"), users),
    ("POST", re.compile(r"/_sim/join"), join),
]
