"""Meeting registrants as the simulator keeps and shows them (Zoom's Meetings API shapes).

Pure functions over plain dicts; routes.py checks who may ask and holds the state's lock.
What Zoom does and the simulator copies:

- registration needs a licensed host: a Basic user's ``POST .../registrants`` is answered
  400 with code 200 ("Only available for Paid user: {userId}.");
- a meeting created without registration (``approval_type`` 2, also when an account lock
  forced it) refuses registrants: 400 with code 3000;
- with automatic approval (``approval_type`` 0) a registrant is approved at once and gets
  a join URL of their own; registering an e-mail that already holds a live registration
  returns that registration again rather than a second one;
- ``PUT .../registrants/status`` with ``cancel`` ends a registration: its link stops
  admitting anyone (``/_sim/join`` says so), and it leaves the ``approved`` list.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from telemed.zoom.simulator.meetings import InvalidRequest

STATUS_ACTIONS = {"approve": "approved", "cancel": "cancelled", "deny": "denied"}
LIST_STATUSES = {"pending", "approved", "denied"}
MAX_STATUS_BATCH = 30  # Zoom's maximum registrants per status update
MAX_REGISTRANTS = 4999
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")


class RegistrationRefused(Exception):
    """Zoom's 400 for a meeting or host that cannot take registrants."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def validate_registrant(body: Any) -> dict[str, Any]:
    """Refuse what Zoom refuses for ``POST /meetings/{id}/registrants`` (400 / 300)."""
    if not isinstance(body, dict):
        raise InvalidRequest("body", "Request Body should be a valid JSON object.")
    for name, limit in (("first_name", 64), ("last_name", 64), ("email", 128)):
        value = body.get(name)
        if name == "last_name" and value is None:
            continue
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            raise InvalidRequest(name)
    if not _EMAIL.match(body["email"]):
        raise InvalidRequest("email", "Invalid email.")
    return body


def validate_status(body: Any) -> tuple[str, list[dict[str, Any]]]:
    """The action and the registrants of ``PUT /meetings/{id}/registrants/status``."""
    if not isinstance(body, dict) or body.get("action") not in STATUS_ACTIONS:
        raise InvalidRequest("action")
    listed = body.get("registrants", [])
    if not isinstance(listed, list) or len(listed) > MAX_STATUS_BATCH:
        raise InvalidRequest("registrants")
    for item in listed:
        if not isinstance(item, dict) or not (isinstance(item.get("id"), str) or isinstance(item.get("email"), str)):
            raise InvalidRequest("registrants")
    return body["action"], listed


def register(
    meeting: dict[str, Any], registrants: list[dict[str, Any]], body: dict[str, Any], *,
    licensed: bool, now_iso: str,
) -> dict[str, Any]:
    """Add (or find) the registration for ``body``; the stored registrant."""
    if not licensed:
        raise RegistrationRefused(200, f"Only available for Paid user: {meeting['host_id']}.")
    approval = meeting.get("settings", {}).get("approval_type", 2)
    if approval == 2:
        raise RegistrationRefused(3000, f"Registration has not been enabled for this meeting: {meeting['id']}.")
    email = body["email"].strip().lower()
    for existing in registrants:
        if existing["email"].lower() == email and existing["status"] in {"approved", "pending"}:
            return existing
    if len(registrants) >= MAX_REGISTRANTS:
        raise RegistrationRefused(3043, "Meeting has reached maximum attendee capacity.")
    approved = approval == 0
    registrant = {
        "id": secrets.token_urlsafe(16),
        "email": body["email"].strip(),
        "first_name": body["first_name"],
        "last_name": body.get("last_name") or "",
        "status": "approved" if approved else "pending",
        "create_time": now_iso,
        "participant_pin_code": 100000 + secrets.randbelow(900000),
        # The link's tk= is the registrant's own key; the meeting's passcode rides along.
        "join_url": _join_url(meeting) if approved else "",
    }
    registrants.append(registrant)
    return registrant


def created_view(meeting: dict[str, Any], registrant: dict[str, Any]) -> dict[str, Any]:
    """The 201 answer of ``POST /meetings/{id}/registrants``."""
    view: dict[str, Any] = {
        "id": meeting["id"],
        "registrant_id": registrant["id"],
        "start_time": meeting["start_time"],
        "topic": meeting["topic"],
        "participant_pin_code": registrant["participant_pin_code"],
    }
    if registrant["join_url"]:  # none while a manual approval is pending
        view["join_url"] = registrant["join_url"]
    return view


def set_status(registrants: list[dict[str, Any]], action: str, listed: list[dict[str, Any]]) -> int:
    """Apply a status action to the registrants named by id or e-mail; how many changed."""
    status = STATUS_ACTIONS[action]
    ids = {item["id"] for item in listed if isinstance(item.get("id"), str)}
    emails = {item["email"].lower() for item in listed if isinstance(item.get("email"), str)}
    changed = 0
    for registrant in registrants:
        named = registrant["id"] in ids or registrant["email"].lower() in emails
        if named and registrant["status"] != status:
            registrant["status"] = status
            changed += 1
    return changed


def list_item(registrant: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "email", "first_name", "last_name", "status", "create_time", "join_url",
            "participant_pin_code")
    return {key: registrant[key] for key in keys if registrant.get(key) not in (None, "")}


def admits(meeting: dict[str, Any] | None, registrants: list[dict[str, Any]], url: str) -> tuple[bool, str]:
    """Whether a registrant's join URL would let its holder in now, and why (not)."""
    for registrant in registrants:
        if registrant.get("join_url") == url:
            if meeting is None:
                return False, "meeting deleted"
            if registrant["status"] != "approved":
                return False, f"registration {registrant['status']}"
            return True, "approved registrant"
    return False, "unknown link"


def _join_url(meeting: dict[str, Any]) -> str:
    pwd = meeting.get("encrypted_password")
    query = f"?tk={secrets.token_urlsafe(32)}" + (f"&pwd={pwd}" if pwd else "")
    return f"https://zoom.us/w/{meeting['id']}{query}"
