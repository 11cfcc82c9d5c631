"""The contract with booking systems: event models, JSON Schema, signing, ``publish``."""

from events.errors import FieldError, InvalidEvent
from events.models import (
    BookedEvent,
    CancelledEvent,
    RescheduledEvent,
    SCHEMA_VERSION,
    event_to_json,
)
from events.parsing import Event, parse_event
from events.publish import PublishResult, Publisher, configure, publish

__all__ = [
    "BookedEvent",
    "CancelledEvent",
    "Event",
    "FieldError",
    "InvalidEvent",
    "PublishResult",
    "Publisher",
    "RescheduledEvent",
    "SCHEMA_VERSION",
    "configure",
    "event_to_json",
    "parse_event",
    "publish",
]
