"""Zoom's meeting object as the simulator builds, changes and shows it.

Pure functions over plain dicts; the state module owns storage and locking. Shapes follow
Zoom's Meetings OpenAPI spec and what the real API returns (which includes ``uuid``,
``host_id`` and ``status`` on create although the spec omits them).
"""

from __future__ import annotations

import base64
import copy
import re
import secrets
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SCHEDULED_TYPES = {2, 8}
MEETING_TYPES = {1, 2, 3, 8}
_START_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")
_PASSCODE = re.compile(r"^[A-Za-z0-9@\-_*]{1,10}$")

# A permissive account, so a client that forgets to ask for security shows up in what the
# simulator returns (Zoom's real defaults depend on the account's settings).
DEFAULT_SETTINGS: dict[str, Any] = {
    "host_video": False,
    "participant_video": False,
    "cn_meeting": False,
    "in_meeting": False,
    "join_before_host": True,
    "jbh_time": 0,
    "mute_upon_entry": False,
    "watermark": False,
    "use_pmi": False,
    "approval_type": 2,
    "audio": "voip",
    "auto_recording": "none",
    "enforce_login": False,
    "enforce_login_domains": "",
    "alternative_hosts": "",
    "alternative_hosts_email_notification": True,
    "waiting_room": False,
    "meeting_authentication": False,
    "encryption_type": "enhanced_encryption",
    "registrants_confirmation_email": True,
    "registrants_email_notification": True,
    "email_notification": True,
    "private_meeting": False,
    "device_testing": False,
    "focus_mode": False,
    "show_share_button": False,
    "allow_multiple_devices": False,
    "participant_focused_meeting": False,
    "push_change_to_calendar": False,
    "auto_start_meeting_summary": False,
    "auto_start_ai_companion_questions": False,
}
_ENUMS: dict[str, set[Any]] = {
    "approval_type": {0, 1, 2},
    "auto_recording": {"local", "cloud", "none"},
    "audio": {"both", "telephony", "voip", "thirdParty"},
    "jbh_time": {0, 5, 10, 15},
    "encryption_type": {"enhanced_encryption", "e2ee"},
}


class InvalidRequest(Exception):
    """A request Zoom would refuse with 400 / code 300."""

    def __init__(self, field: str, message: str = "Invalid field.") -> None:
        super().__init__(field)
        self.field = field
        self.message = message

    def body(self) -> dict[str, Any]:
        return {
            "code": 300,
            "message": "Validation Failed.",
            "errors": [{"field": self.field, "message": self.message}],
        }


def iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_start_time(value: Any, timezone: str | None) -> datetime | None:
    """Zoom's reading of start_time: ``...Z`` is UTC, a bare local time is in ``timezone``."""
    if not isinstance(value, str) or not _START_TIME.match(value):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_zone(timezone) or UTC)
    return moment.astimezone(UTC)


def validate(body: Any, *, partial: bool) -> dict[str, Any]:
    """Refuse what Zoom refuses; ``partial`` for PATCH (every field optional)."""
    if not isinstance(body, dict):
        raise InvalidRequest("body", "Request Body should be a valid JSON object.")
    _check(body, "topic", lambda v: isinstance(v, str) and len(v) <= 200)
    _check(body, "agenda", lambda v: isinstance(v, str) and len(v) <= 2000)
    _check(body, "type", lambda v: _is_int(v) and v in MEETING_TYPES)
    _check(body, "duration", lambda v: _is_int(v) and v >= 0)
    _check(body, "password", lambda v: isinstance(v, str) and bool(_PASSCODE.match(v)))
    _check(body, "timezone", lambda v: isinstance(v, str) and _zone(v) is not None)
    _check(body, "default_password", lambda v: isinstance(v, bool))
    _check(body, "pre_schedule", lambda v: isinstance(v, bool))
    if partial:
        _check(body, "start_time", lambda v: parse_start_time(v, body.get("timezone")) is not None)
    settings = body.get("settings", {})
    if not isinstance(settings, dict):
        raise InvalidRequest("settings")
    for name, value in settings.items():
        if name in _ENUMS and value not in _ENUMS[name]:
            raise InvalidRequest(f"settings.{name}")
        if isinstance(DEFAULT_SETTINGS.get(name), bool) and not isinstance(value, bool):
            raise InvalidRequest(f"settings.{name}")
    return body


def new_meeting(
    body: dict[str, Any],
    *,
    meeting_id: int,
    host_id: str,
    host_email: str,
    now: datetime,
    locked_settings: dict[str, Any],
) -> tuple[dict[str, Any], str | None]:
    """The stored meeting for a valid create request, and why it became instant (or None).

    Like Zoom, a scheduled meeting without a usable start_time silently becomes an instant
    meeting starting now; the reason is returned so tests can catch it.
    """
    meeting_type = body.get("type", 2)
    timezone = body.get("timezone") or "UTC"
    conversion = None
    start = now
    if meeting_type in SCHEDULED_TYPES:
        parsed = parse_start_time(body.get("start_time"), timezone)
        if parsed is None:
            conversion = "missing start_time" if "start_time" not in body else "invalid start_time"
            meeting_type = 1
        else:
            start = parsed
    password = body.get("password")
    if password is None and body.get("default_password", True):
        password = "".join(secrets.choice("0123456789") for _ in range(6))  # account requires one
    meeting = {
        "uuid": base64.b64encode(secrets.token_bytes(16)).decode("ascii"),
        "id": meeting_id,
        "host_id": host_id,
        "host_email": host_email,
        "topic": body.get("topic") or "Zoom Meeting",
        "type": meeting_type,
        "status": "waiting",
        "start_time": iso_z(start),
        "duration": body.get("duration", 60),
        "timezone": timezone,
        "agenda": body.get("agenda", ""),
        "created_at": iso_z(now),
        "settings": effective_settings(
            {**DEFAULT_SETTINGS, **body.get("settings", {})}, locked_settings
        ),
        "pre_schedule": bool(body.get("pre_schedule", False)),
        "creation_source": "open_api",
    }
    _set_password(meeting, password)
    return meeting, conversion


def apply_update(
    meeting: dict[str, Any], body: dict[str, Any], locked_settings: dict[str, Any]
) -> None:
    """PATCH semantics: only the fields sent change; settings merge."""
    for name in ("topic", "agenda", "duration", "timezone", "type"):
        if name in body:
            meeting[name] = body[name]
    if "start_time" in body:
        parsed = parse_start_time(body["start_time"], body.get("timezone", meeting.get("timezone")))
        assert parsed is not None  # validate() refused anything else
        meeting["start_time"] = iso_z(parsed)
    if "password" in body:
        _set_password(meeting, body["password"])
    if isinstance(body.get("settings"), dict):
        meeting["settings"] = effective_settings(
            {**meeting["settings"], **body["settings"]}, locked_settings
        )


def effective_settings(asked: dict[str, Any], locked: dict[str, Any]) -> dict[str, Any]:
    """Account locks win over the request; a waiting room disables join-before-host."""
    settings = {**asked, **locked}
    if settings.get("waiting_room"):
        settings["join_before_host"] = False
    return settings


def public_view(meeting: dict[str, Any]) -> dict[str, Any]:
    """What create and GET return: a fresh host key (zak) in start_url on every call."""
    view = copy.deepcopy(meeting)
    view["start_url"] = f"https://zoom.us/s/{meeting['id']}?zak={secrets.token_urlsafe(32)}"
    return view


def list_item(meeting: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "uuid",
        "id",
        "host_id",
        "topic",
        "type",
        "start_time",
        "duration",
        "timezone",
        "agenda",
        "created_at",
        "join_url",
    )
    return {key: meeting[key] for key in keys if key in meeting}


def _set_password(meeting: dict[str, Any], password: str | None) -> None:
    encoded = secrets.token_urlsafe(24) if password else ""
    meeting["password"] = password or ""
    meeting["encrypted_password"] = encoded
    meeting["h323_password"] = _digits(password)
    meeting["pstn_password"] = _digits(password)
    query = f"?pwd={encoded}" if encoded else ""
    meeting["join_url"] = f"https://zoom.us/j/{meeting['id']}{query}"


def _digits(password: str | None) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(6)) if password else ""


def _check(body: dict[str, Any], field: str, ok: Any) -> None:
    if field in body and not ok(body[field]):
        raise InvalidRequest(field)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
