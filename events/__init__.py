"""The contract with booking systems: event models, JSON Schema, signing, ``publish``."""

from telemed.events.errors import FieldError, InvalidEvent
from telemed.events.models import (
    SCHEMA_VERSION,
    BookedEvent,
    CancelledEvent,
    RescheduledEvent,
    event_to_json,
)
from telemed.events.parsing import Event, parse_event
from telemed.events.publish import Publisher, PublishResult, configure, publish

__all__ = [
    "SCHEMA_VERSION",
    "BookedEvent",
    "CancelledEvent",
    "Event",
    "FieldError",
    "InvalidEvent",
    "PublishResult",
    "Publisher",
    "RescheduledEvent",
    "configure",
    "event_to_json",
    "parse_event",
    "publish",
]
