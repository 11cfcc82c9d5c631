"""What the simulator answers on Zoom's endpoints (the ``/_sim/`` admin API is in admin.py).

Each handler takes the state and a parsed request and returns a response; the HTTP server
module only moves bytes. Status codes and error bodies mirror Zoom's: API errors are
``{"code", "message"}``, OAuth errors ``{"reason", "error"}``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from telemed.zoom.simulator import limits, oauth
from telemed.zoom.simulator import meetings as model
from telemed.zoom.simulator import registrants as regs
from telemed.zoom.simulator.admin import ADMIN_ROUTES
from telemed.zoom.simulator.state import SimState
from telemed.zoom.simulator.wire import Handler, SimRequest, SimResponse
from telemed.zoom.simulator.wire import error as _error

LIST_TYPES = {"scheduled", "live", "upcoming", "upcoming_meetings", "previous_meetings"}


def dispatch(state: SimState, request: SimRequest) -> SimResponse:
    """The answer to one request (injected faults are the HTTP server's business)."""
    path_known = False
    for method, pattern, handler in _ROUTES:
        match = pattern.fullmatch(request.path)
        if match and method == request.method:
            return handler(state, request, match)
        path_known = path_known or match is not None
    if path_known:
        return _error(405, 405, "Method not allowed.")
    return _error(404, 404, "Not found.")


# Meetings ------------------------------------------------------------------------------


def _authorized(category: str) -> Any:
    """Bearer check, then the per-second limit of the account and rate-limit category."""

    def wrap(handler: Handler) -> Handler:
        def check(state: SimState, request: SimRequest, match: re.Match[str]) -> SimResponse:
            header = request.headers.get("authorization", "")
            token = header[7:].strip() if header[:7].lower() == "bearer " else None
            status = state.token_status(token)
            if status == "expired":
                return _error(401, 124, "Access token is expired.")
            if status != "valid":
                return _error(401, 124, "Invalid access token.")
            request.token_user = state.token_user(token)
            # A user-level token acts in that user's own account, an app's in the app's.
            account = request.account = state.token_account(token) or state.credentials.account_id
            if not state.rate_windows.admit(account, category, request.arrived,
                                            limit=state.account_rate(account, category)):
                state.count("rate_limited.qps", account=account)
                return limits.qps_limited(category)
            return handler(state, request, match)

        return check

    return wrap


@_authorized(limits.MEDIUM)
def _create(state: SimState, request: SimRequest, match: re.Match[str]) -> SimResponse:
    try:
        body = model.validate(request.json, partial=False)
    except model.InvalidRequest as invalid:
        return SimResponse(400, invalid.body())
    host_id, host_email = state.resolve_user(unquote(match["user"]), request.token_user)
    if request.token_user and host_email != request.token_user.lower():
        return _no_such_user(match["user"])  # a user's token schedules for that user only
    account = _account(state, request)
    if not state.count_daily(host_email, account):
        return _daily_limit(state, account)
    meeting, conversion = model.new_meeting(
        body,
        meeting_id=state.new_meeting_id(),
        host_id=host_id,
        host_email=host_email,
        now=state.now(),
        locked_settings=dict(state.locked_settings),
    )
    state.add_meeting(meeting, host=unquote(match["user"]), instant_conversion=conversion, account=account)
    state.count("meetings.created", account=account)
    return SimResponse(201, state.note_secrets(model.public_view(meeting)))


@_authorized(limits.LIGHT)
def _get(state: SimState, request: SimRequest, match: re.Match[str]) -> SimResponse:
    with state.lock:
        record = state.live_meeting(int(match["id"]))
        if record is None or not _visible(state, record, request):
            return _not_found(match["id"])
        return SimResponse(200, state.note_secrets(model.public_view(record.meeting)))


@_authorized(limits.LIGHT)
def _update(state: SimState, request: SimRequest, match: re.Match[str]) -> SimResponse:
    try:
        body = model.validate(request.json, partial=True)
    except model.InvalidRequest as invalid:
        return SimResponse(400, invalid.body())
    with state.lock:
        record = state.live_meeting(int(match["id"]))
        if record is None or not _visible(state, record, request):
            return _not_found(match["id"])
        if not state.count_daily(record.meeting["host_email"], record.account):
            return _daily_limit(state, record.account)
        model.apply_update(record.meeting, body, dict(state.locked_settings))
    return SimResponse(204)


@_authorized(limits.LIGHT)
def _delete(state: SimState, request: SimRequest, match: re.Match[str]) -> SimResponse:
    with state.lock:
        record = state.live_meeting(int(match["id"]))
        if record is None or not _visible(state, record, request):
            return _not_found(match["id"])
        state.delete_meeting(int(match["id"]))
    return SimResponse(204)


@_authorized(limits.MEDIUM)  # Zoom labels "list meetings" MEDIUM
def _list(state: SimState, request: SimRequest, match: re.Match[str]) -> SimResponse:
    host_id, host_email = state.resolve_user(unquote(match["user"]), request.token_user)
    if request.token_user and host_email != request.token_user.lower():
        return _no_such_user(match["user"])
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
        (m for m in state.host_meetings(host_id, _account(state, request)) if _in_list(m, list_type, state)),
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


# Registrants ---------------------------------------------------------------------------


@_authorized(limits.LIGHT)  # Zoom labels "add a meeting registrant" LIGHT
def _add_registrant(state: SimState, request: SimRequest, match: re.Match[str]) -> SimResponse:
    try:
        body = regs.validate_registrant(request.json)
    except model.InvalidRequest as invalid:
        return SimResponse(400, invalid.body())
    with state.lock:
        record = state.live_meeting(int(match["id"]))
        if record is None or not _visible(state, record, request):
            # The spec documents 1001 for this endpoint's unknown meeting.
            return _error(404, 1001, f"Meeting does not exist: {match['id']}.")
        try:
            registrant = regs.register(
                record.meeting, record.registrants, body,
                licensed=state.is_licensed(record.meeting["host_email"]), now_iso=model.iso_z(state.now()),
            )
        except regs.RegistrationRefused as refused:
            state.count("registrants.refused")
            return _error(400, refused.code, refused.message)
        state.count("registrants.added")
        view = regs.created_view(record.meeting, registrant)
    return SimResponse(201, state.note_secrets(view))


@_authorized(limits.MEDIUM)  # Zoom labels "update registrant's status" MEDIUM
def _registrant_status(state: SimState, request: SimRequest, match: re.Match[str]) -> SimResponse:
    try:
        action, listed = regs.validate_status(request.json)
    except model.InvalidRequest as invalid:
        return SimResponse(400, invalid.body())
    with state.lock:
        record = state.live_meeting(int(match["id"]))
        if record is None or not _visible(state, record, request):
            return _not_found(match["id"])
        if record.meeting.get("settings", {}).get("approval_type", 2) == 2:
            return _error(400, 3000, f"Registration has not been enabled for this meeting: {match['id']}.")
        state.count(f"registrants.{action}", regs.set_status(record.registrants, action, listed))
    return SimResponse(204)


@_authorized(limits.MEDIUM)  # Zoom labels "list meeting registrants" MEDIUM
def _list_registrants(state: SimState, request: SimRequest, match: re.Match[str]) -> SimResponse:
    status = request.query.get("status", "approved")
    if status not in regs.LIST_STATUSES:
        return _error(400, 300, "Invalid parameter: status.")
    try:
        page_size = min(300, max(1, int(request.query.get("page_size", "30"))))
    except ValueError:
        return _error(400, 300, "Invalid parameter: page_size.")
    with state.lock:
        record = state.live_meeting(int(match["id"]))
        if record is None or not _visible(state, record, request):
            return _not_found(match["id"])
        selected = [r for r in record.registrants if r["status"] == status]
    offset = 0
    scope = f"registrants:{match['id']}"
    if request.query.get("next_page_token"):
        saved = state.load_page(request.query["next_page_token"])
        if saved is None or saved[:2] != (scope, status):
            return _error(400, 300, "Invalid parameter: next_page_token.")
        offset = saved[2]
    page = selected[offset : offset + page_size]
    more = offset + page_size < len(selected)
    return SimResponse(200, state.note_secrets({
        "page_count": max(1, -(-len(selected) // page_size)),
        "page_size": page_size,
        "total_records": len(selected),
        "next_page_token": state.save_page(scope, status, offset + page_size) if more else "",
        "registrants": [regs.list_item(r) for r in page],
    }))


# Admin ---------------------------------------------------------------------------------

# Helpers -------------------------------------------------------------------------------


def _account(state: SimState, request: SimRequest) -> str:
    """The Zoom account a request acts in: its token's (set by the bearer check)."""
    return request.account or state.credentials.account_id


def _visible(state: SimState, record: Any, request: SimRequest) -> bool:
    """A token sees the meetings of its own account only (the app's, or the user's)."""
    return bool(record.account == _account(state, request))


def _no_such_user(user: str) -> SimResponse:
    return _error(404, 1001, f"User does not exist: {unquote(user)}.")


def _not_found(meeting_id: str) -> SimResponse:
    return _error(404, 3001, f"Meeting does not exist: {meeting_id}.")


def _daily_limit(state: SimState, account: str) -> SimResponse:
    state.count("rate_limited.daily", account=account)
    return limits.daily_limited(state.daily_limit_of(account), state.now())


_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    ("POST", re.compile(r"/oauth/token"), oauth.token),
    ("GET", re.compile(r"/oauth/authorize"), oauth.authorize),
    ("POST", re.compile(r"/v2/users/(?P<user>[^/]+)/meetings"), _create),
    ("GET", re.compile(r"/v2/users/(?P<user>[^/]+)/meetings"), _list),
    ("GET", re.compile(r"/v2/meetings/(?P<id>\d{1,19})"), _get),
    ("PATCH", re.compile(r"/v2/meetings/(?P<id>\d{1,19})"), _update),
    ("DELETE", re.compile(r"/v2/meetings/(?P<id>\d{1,19})"), _delete),
    ("POST", re.compile(r"/v2/meetings/(?P<id>\d{1,19})/registrants"), _add_registrant),
    ("GET", re.compile(r"/v2/meetings/(?P<id>\d{1,19})/registrants"), _list_registrants),
    ("PUT", re.compile(r"/v2/meetings/(?P<id>\d{1,19})/registrants/status"), _registrant_status),
    *ADMIN_ROUTES,
]
