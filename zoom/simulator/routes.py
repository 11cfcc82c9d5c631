"""What the simulator answers on Zoom's endpoints (the ``/_sim/`` admin API is in admin.py).

Each handler takes the state and a parsed request and returns a response; the HTTP server
module only moves bytes. Status codes and error bodies mirror Zoom's: API errors are
``{"code", "message"}``, OAuth errors ``{"reason", "error"}``.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import unquote

from zoom.simulator import meetings as model
from zoom.simulator.admin import ADMIN_ROUTES
from zoom.simulator.state import SimState
from zoom.simulator.wire import Handler, SimRequest, SimResponse
from zoom.simulator.wire import error as _error

LIST_TYPES = {"scheduled", "live", "upcoming", "upcoming_meetings", "previous_meetings"}
SCOPES = (
    "meeting:write:meeting:admin meeting:read:meeting:admin meeting:update:meeting:admin "
    "meeting:delete:meeting:admin meeting:read:list_meetings:admin"
)
DAILY_LIMIT_MESSAGE = (
    "You have exceeded the daily rate limit ({limit}) of Meeting Create/Update API requests "
    "permitted for this particular user. You may resume these requests at GMT 00:00:00."
)


def dispatch(state: SimState, request: SimRequest) -> SimResponse:
    if not request.path.startswith("/_sim/"):
        fault = state.take_fault(request.method, request.path)
        if fault is not None:
            return SimResponse(fault.status, fault.body, dict(fault.headers))
    path_known = False
    for method, pattern, handler in _ROUTES:
        match = pattern.fullmatch(request.path)
        if match and method == request.method:
            return handler(state, request, match)
        path_known = path_known or match is not None
    if path_known:
        return _error(405, 405, "Method not allowed.")
    return _error(404, 404, "Not found.")


# OAuth ---------------------------------------------------------------------------------


def _token(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    creds = state.credentials
    if _basic_auth(request.headers.get("authorization")) != (creds.client_id, creds.client_secret):
        return SimResponse(
            401, {"reason": "Invalid client_id or client_secret", "error": "invalid_client"}
        )
    params = {**request.query, **request.form}  # Zoom accepts either
    if params.get("grant_type") != "account_credentials":
        return SimResponse(
            400, {"reason": "Unsupported grant type", "error": "unsupported_grant_type"}
        )
    if params.get("account_id") != creds.account_id:
        return SimResponse(
            400, {"reason": "Invalid request : Account ID is invalid", "error": "invalid_request"}
        )
    return SimResponse(
        200,
        {
            "access_token": state.issue_token(),
            "token_type": "bearer",
            "expires_in": state.token_lifetime_seconds,
            "scope": SCOPES,
            "api_url": request.base_url,
        },
    )


# Meetings ------------------------------------------------------------------------------


def _authorized(handler: Handler) -> Handler:
    def check(state: SimState, request: SimRequest, match: re.Match[str]) -> SimResponse:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else None
        status = state.token_status(token)
        if status == "expired":
            return _error(401, 124, "Access token is expired.")
        if status != "valid":
            return _error(401, 124, "Invalid access token.")
        return handler(state, request, match)

    return check


@_authorized
def _create(state: SimState, request: SimRequest, match: re.Match[str]) -> SimResponse:
    try:
        body = model.validate(request.json, partial=False)
    except model.InvalidRequest as invalid:
        return SimResponse(400, invalid.body())
    host_id, host_email = state.resolve_user(unquote(match["user"]))
    if not state.count_daily(host_email):
        return _daily_limit(state)
    meeting, conversion = model.new_meeting(
        body,
        meeting_id=state.new_meeting_id(),
        host_id=host_id,
        host_email=host_email,
        now=state.now(),
        locked_settings=dict(state.locked_settings),
    )
    state.add_meeting(meeting, host=unquote(match["user"]), instant_conversion=conversion)
    return SimResponse(201, state.note_secrets(model.public_view(meeting)))


@_authorized
def _get(state: SimState, request: SimRequest, match: re.Match[str]) -> SimResponse:
    with state.lock:
        record = state.live_meeting(int(match["id"]))
        if record is None:
            return _not_found(match["id"])
        return SimResponse(200, state.note_secrets(model.public_view(record.meeting)))


@_authorized
def _update(state: SimState, request: SimRequest, match: re.Match[str]) -> SimResponse:
    try:
        body = model.validate(request.json, partial=True)
    except model.InvalidRequest as invalid:
        return SimResponse(400, invalid.body())
    with state.lock:
        record = state.live_meeting(int(match["id"]))
        if record is None:
            return _not_found(match["id"])
        if not state.count_daily(record.meeting["host_email"]):
            return _daily_limit(state)
        model.apply_update(record.meeting, body, dict(state.locked_settings))
    return SimResponse(204)


@_authorized
def _delete(state: SimState, request: SimRequest, match: re.Match[str]) -> SimResponse:
    if not state.delete_meeting(int(match["id"])):
        return _not_found(match["id"])
    return SimResponse(204)


@_authorized
def _list(state: SimState, request: SimRequest, match: re.Match[str]) -> SimResponse:
    host_id, _ = state.resolve_user(unquote(match["user"]))
    list_type = request.query.get("type", "scheduled")
    if list_type not in LIST_TYPES:
        return _error(400, 300, "Invalid parameter: type.")
    try:
        page_size = min(300, max(1, int(request.query.get("page_size", "30"))))
    except ValueError:
        return _error(400, 300, "Invalid parameter: page_size.")
    offset = 0
    if request.query.get("next_page_token"):
        saved = state.load_page(request.query["next_page_token"])
        if saved is None or saved[:2] != (host_id, list_type):
            return _error(400, 300, "Invalid parameter: next_page_token.")
        offset = saved[2]
    selected = sorted(
        (m for m in state.host_meetings(host_id) if _in_list(m, list_type, state)),
        key=lambda m: (m["start_time"], m["id"]),
    )
    page = selected[offset : offset + page_size]
    more = offset + page_size < len(selected)
    return SimResponse(
        200,
        {
            "page_size": page_size,
            "total_records": len(selected),
            "next_page_token": state.save_page(host_id, list_type, offset + page_size)
            if more
            else "",
            "meetings": [model.list_item(m) for m in page],
        },
    )


def _in_list(meeting: dict[str, Any], list_type: str, state: SimState) -> bool:
    if list_type == "live":
        return meeting.get("status") == "started"
    start = model.parse_start_time(meeting["start_time"], "UTC")
    assert start is not None
    ends = start.timestamp() + 60 * int(meeting.get("duration") or 0)
    if list_type in {"upcoming", "upcoming_meetings"}:
        return ends > state.clock()
    if list_type == "previous_meetings":
        return ends <= state.clock()
    return meeting["type"] in {2, 3, 8}  # scheduled


# Admin ---------------------------------------------------------------------------------

# Helpers -------------------------------------------------------------------------------


def _not_found(meeting_id: str) -> SimResponse:
    return _error(404, 3001, f"Meeting does not exist: {meeting_id}.")


def _daily_limit(state: SimState) -> SimResponse:
    message = DAILY_LIMIT_MESSAGE.format(limit=state.daily_limit)
    return SimResponse(429, {"code": 429, "message": message}, {"X-RateLimit-Category": "Medium"})


def _basic_auth(header: str | None) -> tuple[str, str] | None:
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        user, _, password = (
            base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    ("POST", re.compile(r"/oauth/token"), _token),
    ("POST", re.compile(r"/v2/users/(?P<user>[^/]+)/meetings"), _create),
    ("GET", re.compile(r"/v2/users/(?P<user>[^/]+)/meetings"), _list),
    ("GET", re.compile(r"/v2/meetings/(?P<id>\d{1,19})"), _get),
    ("PATCH", re.compile(r"/v2/meetings/(?P<id>\d{1,19})"), _update),
    ("DELETE", re.compile(r"/v2/meetings/(?P<id>\d{1,19})"), _delete),
    *ADMIN_ROUTES,
]
