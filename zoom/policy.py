"""The secure meeting policy: what we ask Zoom for, and how we check what we got.

Pure functions only. Field names are the ones in Zoom's Meetings OpenAPI spec (2025); the
contract tests check every body built here against it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PASSCODE_LENGTH = 10  # Zoom's maximum
PASSCODE_ALPHABET = string.ascii_letters + string.digits
MARKER_PREFIX = "telemed:"
SCHEDULED_MEETING = 2
TOPIC_MAX = 200  # Zoom's limit on topic length
APPROVE_AUTOMATICALLY = 0  # Zoom's approval_type values
NO_REGISTRATION = 2
REGISTRANT_NAME_MAX = 64  # Zoom's limit on first_name and last_name
# What decides whether registration is available is Zoom's answer, not a guess: the meeting
# it created (an account lock turns approval_type back to 2), or its refusal to add a
# registrant (400 with code 200 "Only available for Paid user" for a Basic host; code
# 3000 when registration is not enabled for the meeting).
REGISTRATION_REFUSED_CODES = frozenset({200, 3000})

# Settings whose absence from Zoom's answer counts as a mismatch: without them the
# meeting may be open to anyone with the link, or recorded.
_CRITICAL_SETTINGS = ("waiting_room", "join_before_host", "use_pmi", "auto_recording")
_MARKER_HEX = 20


def generate_passcode(length: int = PASSCODE_LENGTH) -> str:
    """A random passcode of letters and digits with at least one of each.

    Letters and digits only: Zoom accepts a few symbols too, but account passcode rules
    and mail clients treat them inconsistently. Mixing both kinds satisfies the common
    "letters and numbers" passcode requirement.
    """
    if not 2 <= length <= PASSCODE_LENGTH:
        raise ValueError(f"passcode length must be 2..{PASSCODE_LENGTH}")
    while True:
        candidate = "".join(secrets.choice(PASSCODE_ALPHABET) for _ in range(length))
        if any(c.isdigit() for c in candidate) and any(c.isalpha() for c in candidate):
            return candidate


def secure_settings(meeting_authentication: bool = False, registration: bool = False) -> dict[str, Any]:
    """Every security-relevant setting stated explicitly, never left to account defaults.

    ``registration``: the patient is added as a registrant and joins with a link of their
    own (automatic approval); Zoom's own registration mails stay off because telemed
    sends the patient's mail, and Zoom's would carry the link to an address telemed did
    not choose the wording for.
    """
    settings: dict[str, Any] = {
        "waiting_room": True,  # the doctor admits the patient; a leaked link is not enough
        "join_before_host": False,
        "use_pmi": False,  # a fresh meeting id per appointment, never the doctor's PMI
        "approval_type": APPROVE_AUTOMATICALLY if registration else NO_REGISTRATION,
        "auto_recording": "none",
        "mute_upon_entry": True,
        "host_video": True,
        # The patient switches the camera on when ready (Zoom shows a preview first).
        "participant_video": False,
        # Health conversations must not be summarised by AI features.
        "auto_start_meeting_summary": False,
        "auto_start_ai_companion_questions": False,
    }
    if registration:
        settings["registrants_email_notification"] = False
        settings["registrants_confirmation_email"] = False
    if meeting_authentication:
        # Only sent when configured: sending False would weaken an account that requires it.
        settings["meeting_authentication"] = True
    return settings


def format_start_time(start_time: datetime) -> str:
    """UTC with ``Z``: the one format Zoom reads without consulting any timezone."""
    if start_time.tzinfo is None or start_time.utcoffset() is None:
        raise ValueError("start_time must be timezone-aware (a naive time is ambiguous)")
    return start_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_meeting_request(
    *,
    topic: str,
    start_time: datetime,
    duration_minutes: int,
    timezone: str,
    passcode: str,
    marker: str,
    meeting_authentication: bool = False,
    registration: bool = False,
) -> dict[str, Any]:
    """The body of ``POST /users/{userId}/meetings`` for one appointment.

    ``topic`` should carry no patient data (Zoom shows it to everyone invited); it is cut
    to Zoom's 200 characters. ``marker`` goes into the agenda so a retry can find a
    meeting it already created (see :func:`find_marked`).
    """
    _check_passcode(passcode)
    if not marker.startswith(MARKER_PREFIX):
        raise ValueError("marker must come from make_marker()")
    return {
        "topic": topic.strip()[:TOPIC_MAX] or "Appointment",
        "type": SCHEDULED_MEETING,
        "start_time": format_start_time(start_time),
        "duration": _check_duration(duration_minutes),
        "timezone": _check_timezone(timezone),
        "password": passcode,
        "agenda": marker,
        "settings": secure_settings(meeting_authentication, registration),
    }


def build_update_request(
    start_time: datetime, duration_minutes: int, timezone: str
) -> dict[str, Any]:
    """The body of ``PATCH /meetings/{id}`` for a reschedule."""
    return {
        "start_time": format_start_time(start_time),
        "duration": _check_duration(duration_minutes),
        "timezone": _check_timezone(timezone),
    }


def registration_open(returned_meeting: Mapping[str, Any]) -> bool:
    """Whether the meeting Zoom made takes registrants with automatic approval."""
    returned_settings = returned_meeting.get("settings")
    return isinstance(returned_settings, Mapping) and returned_settings.get("approval_type") == APPROVE_AUTOMATICALLY


def registration_refused(status: int | None, code: int | None) -> bool:
    """Whether Zoom's error to ``POST /meetings/{id}/registrants`` means that this host or
    meeting cannot use registration (so the patient gets the passcode link instead)."""
    return status == 400 and code in REGISTRATION_REFUSED_CODES


def build_registrant_request(name: str, email: str) -> dict[str, Any]:
    """The body of ``POST /meetings/{id}/registrants``: the name the waiting room shows.

    Zoom requires a first name; the patient's full name is split at its last space so
    the waiting room shows it as written, each part cut to Zoom's 64 characters.
    """
    cleaned = " ".join(name.split())
    if not cleaned:
        raise ValueError("name: a registrant needs a name")
    if not email or "@" not in email:
        raise ValueError("email: a registrant needs an e-mail address")
    first, _, last = cleaned.rpartition(" ") if " " in cleaned else (cleaned, "", "")
    body: dict[str, Any] = {"email": email, "first_name": first[:REGISTRANT_NAME_MAX]}
    if last:
        body["last_name"] = last[:REGISTRANT_NAME_MAX]
    return body


def registrant_key(patient_id: str, name: str, email: str) -> str:
    """Who a registration was made for, as a digest: a change of patient (or of the name
    the waiting room shows, or the address) changes it, so the registrant is replaced."""
    joined = "\x1f".join((patient_id, " ".join(name.split()), email.strip().lower()))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:32]


def make_marker(appointment_id: str) -> str:
    """A deterministic tag for an appointment's meeting that reveals nothing about it."""
    if not appointment_id:
        raise ValueError("appointment_id must not be empty")
    digest = hashlib.sha256(appointment_id.encode("utf-8")).hexdigest()
    return MARKER_PREFIX + digest[:_MARKER_HEX]


def find_marked(meetings: list[dict[str, Any]], marker: str) -> dict[str, Any] | None:
    """The meeting whose agenda carries ``marker``, if any.

    Should duplicates exist (two creates raced before either was recorded) the oldest
    wins, so every caller adopts the same one and the others can be deleted.
    """
    pattern = re.compile(re.escape(marker) + r"(?![0-9a-f])")
    found = [
        m for m in meetings if isinstance(m.get("agenda"), str) and pattern.search(m["agenda"])
    ]
    if not found:
        return None
    return min(found, key=lambda m: (str(m.get("created_at") or ""), int(m.get("id") or 0)))


def check_settings(requested: Mapping[str, Any], returned_meeting: Mapping[str, Any]) -> list[str]:
    """Each way the meeting Zoom returned differs from the create request we sent.

    ``requested`` is the body from :func:`build_meeting_request`. Account-level locks can
    override what we ask for, and a missing start time silently turns a scheduled meeting
    into an instant one; callers alert on any non-empty result. The messages name fields
    and non-secret values only (never the passcode).
    """
    problems: list[str] = []
    returned_settings = returned_meeting.get("settings")
    if not isinstance(returned_settings, Mapping):
        returned_settings = {}
        problems.append("settings: missing from Zoom's answer")

    for name, wanted in (requested.get("settings") or {}).items():
        if name == "approval_type" and wanted == APPROVE_AUTOMATICALLY:
            # Registration refused by the account is not a weaker meeting: the patient gets
            # the passcode link and the host is flagged once (see registration_open).
            continue
        if name not in returned_settings:
            if name in _CRITICAL_SETTINGS or name == "meeting_authentication":
                problems.append(f"settings.{name}: not reported (expected {wanted!r})")
            continue
        got = returned_settings[name]
        if got != wanted:
            problems.append(f"settings.{name}: expected {wanted!r}, got {got!r}")

    if "password" in requested:
        got_password = returned_meeting.get("password")
        if not got_password:
            problems.append("password: missing (meeting has no passcode)")
        elif got_password != requested["password"]:
            problems.append("password: differs from the one requested")

    wanted_type = requested.get("type")
    if wanted_type is not None and returned_meeting.get("type") != wanted_type:
        problems.append(f"type: expected {wanted_type!r}, got {returned_meeting.get('type')!r}")

    if "start_time" in requested and not _same_instant(
        requested["start_time"], returned_meeting.get("start_time")
    ):
        problems.append(
            f"start_time: expected {requested['start_time']!r}, got {returned_meeting.get('start_time')!r}"
        )
    if "duration" in requested and returned_meeting.get("duration") != requested["duration"]:
        problems.append(
            f"duration: expected {requested['duration']!r}, got {returned_meeting.get('duration')!r}"
        )
    return problems


# Validation helpers --------------------------------------------------------------------


def _check_passcode(passcode: str) -> None:
    if not (1 <= len(passcode) <= PASSCODE_LENGTH) or any(
        c not in PASSCODE_ALPHABET for c in passcode
    ):
        raise ValueError(f"passcode must be 1..{PASSCODE_LENGTH} letters and digits")


def _check_duration(duration_minutes: int) -> int:
    if isinstance(duration_minutes, bool) or not isinstance(duration_minutes, int):
        raise ValueError("duration_minutes must be an integer")
    if not 1 <= duration_minutes <= 1440:
        raise ValueError("duration_minutes must be 1..1440")
    return duration_minutes


def _check_timezone(timezone: str) -> str:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError("timezone must be an IANA zone name such as 'Europe/Berlin'") from None
    return timezone


def as_utc(moment: datetime) -> datetime:
    """Aware UTC; a naive time is taken as UTC (Zoom's ``...Z`` strings, our store)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_zoom_time(value: Any) -> datetime | None:
    """A timestamp from Zoom's answers (``2026-12-08T18:23:00Z``) as aware UTC; None when
    it is not one."""
    try:
        return as_utc(datetime.fromisoformat(str(value)))
    except ValueError:
        return None


def _same_instant(wanted: object, got: object) -> bool:
    try:
        a = datetime.fromisoformat(str(wanted))
        b = datetime.fromisoformat(str(got))
    except ValueError:
        return False
    if a.tzinfo is None or b.tzinfo is None:
        return False
    return a == b
