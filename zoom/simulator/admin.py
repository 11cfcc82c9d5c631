"""The ``/_sim/`` admin API: inspect and steer the simulator over HTTP (tests, demo)."""

from __future__ import annotations

import re

from zoom.simulator.state import Fault, SimState
from zoom.simulator.wire import Handler, SimRequest, SimResponse, error


def meetings(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    return SimResponse(200, {"meetings": state.meeting_views()})


def requests_log(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    return SimResponse(200, {"requests": state.request_log()})


def stats(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    views = state.meeting_views()
    return SimResponse(
        200,
        {
            "grants": state.grants,
            "meetings": sum(1 for v in views if not v["deleted"]),
            "deleted": sum(1 for v in views if v["deleted"]),
            "requests": len(state.request_log()),
        },
    )


def reset(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    state.reset()
    return SimResponse(204)


def expire(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    state.expire_tokens()
    return SimResponse(204)


def fault(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    spec = request.json
    if not isinstance(spec, dict) or not isinstance(spec.get("status"), int):
        return error(
            400,
            300,
            'Expected {"status": int, "body"?, "headers"?, "count"?, "method"?, "path_prefix"?}.',
        )
    state.add_fault(
        Fault(
            status=spec["status"],
            body=spec.get("body"),
            headers={str(k): str(v) for k, v in (spec.get("headers") or {}).items()},
            count=int(spec.get("count", 1)),
            method=spec.get("method"),
            path_prefix=spec.get("path_prefix"),
        )
    )
    return SimResponse(204)


def lock(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    if not isinstance(request.json, dict):
        return error(400, 300, "Expected an object of setting names to values.")
    for name, value in request.json.items():
        state.lock_setting(str(name), value)
    return SimResponse(204)


ADMIN_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    ("GET", re.compile(r"/_sim/meetings"), meetings),
    ("GET", re.compile(r"/_sim/requests"), requests_log),
    ("GET", re.compile(r"/_sim/stats"), stats),
    ("POST", re.compile(r"/_sim/reset"), reset),
    ("POST", re.compile(r"/_sim/expire-tokens"), expire),
    ("POST", re.compile(r"/_sim/faults"), fault),
    ("POST", re.compile(r"/_sim/lock-settings"), lock),
]
