"""The JSON Schema of event contract v1, generated from the models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from events.models import AppointmentEvent

SCHEMA_ID = "https://telemed.invalid/schemas/event.v1.json"


def event_json_schema() -> dict[str, Any]:
    schema = TypeAdapter(AppointmentEvent).json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "telemed appointment event, contract v1",
        "description": "Published by booking systems. Times are RFC 3339 with an offset; "
        "start_time must be in the future for booked and rescheduled events.",
        **schema,
    }


def render_schema() -> str:
    return json.dumps(event_json_schema(), indent=2, sort_keys=True) + "\n"


def write_schema(path: Path) -> None:
    path.write_text(render_schema(), encoding="utf-8")
