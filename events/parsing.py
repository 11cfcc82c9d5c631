"""Turning untrusted input into an event, or an InvalidEvent naming every bad field."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from telemed.events import strict_json
from telemed.events.errors import FieldError, InvalidEvent
from telemed.events.fields import ID_PATTERN
from telemed.events.models import BookedEvent, CancelledEvent, EventEnvelope, RescheduledEvent

Event = BookedEvent | RescheduledEvent | CancelledEvent
_TAGS = {"appointment.booked", "appointment.rescheduled", "appointment.cancelled"}


def parse_event(
    data: Any, *, now: datetime | None = None, allow_past: bool = False
) -> Event:
    """Validate one event given as a dict, or as JSON text (str or bytes) read strictly.

    ``allow_past`` is for re-reading events already accepted into the inbox: the
    start time was in the future when the booking system sent it.
    """
    if isinstance(data, (bytes, bytearray, str)):
        try:
            data = strict_json.loads(data)
        except strict_json.RefusedJSON as exc:  # a duplicate key, a huge number...
            raise InvalidEvent([{"loc": [], "msg": str(exc)}]) from None
        except strict_json.InvalidJSON as exc:
            raise InvalidEvent([{"loc": [], "msg": f"not valid JSON: {exc}"}]) from None
    if isinstance(data, Event.__args__):  # type: ignore[attr-defined]
        data = data.model_dump(mode="json", exclude_none=True)
    if not isinstance(data, dict):
        raise InvalidEvent([{"loc": [], "msg": "must be a JSON object"}])
    if not isinstance(data.get("type"), str) or data["type"] not in _TAGS:  # a list or dict is unhashable
        raise InvalidEvent(
            [{"loc": ["type"], "msg": "must be one of " + ", ".join(sorted(_TAGS))}, *_other_errors(data, now)]
        )
    context = {"now": now, "allow_past": allow_past}
    try:
        return EventEnvelope.model_validate({"event": data}, context=context).event
    except ValidationError as exc:
        raise InvalidEvent(field_errors(exc)) from None


def _other_errors(data: dict[str, Any], now: datetime | None) -> list[FieldError]:
    """With no usable type, still report the other fields (checked as a booking)."""
    try:
        EventEnvelope.model_validate(
            {"event": {**data, "type": "appointment.booked"}}, context={"now": now}
        )
    except ValidationError as exc:
        return field_errors(exc)
    return []


def field_errors(exc: ValidationError) -> list[FieldError]:
    errors: list[FieldError] = []
    for error in exc.errors(include_url=False):
        loc = list(error["loc"])
        # Drop the envelope and the discriminator tag pydantic puts in the path.
        if loc and loc[0] == "event":
            loc = loc[1:]
        if loc and loc[0] in _TAGS:
            loc = loc[1:]
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") == ID_PATTERN:
            message = "must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'"
        elif error["type"] == "extra_forbidden":
            message = "is not a field of the v1 contract"
        elif error["type"] == "missing":
            message = "is required"
        errors.append({"loc": loc, "msg": message})
    return errors
