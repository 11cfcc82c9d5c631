"""The JSON Schema of event contract v1, generated from the models."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from telemed.events.models import AppointmentEvent

SCHEMA_ID = "https://telemed.invalid/schemas/event.v1.json"


# Keywords of JSON Schema 2020-12 whose value is a schema, a map of schemas or a list of
# schemas; every other keyword's value is data (const, enum, examples, ...).
_SCHEMA_VALUED = {"items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames",
                  "unevaluatedItems", "unevaluatedProperties", "contentSchema"}
_SCHEMA_MAPS = {"properties", "patternProperties", "$defs", "dependentSchemas"}
_SCHEMA_LISTS = {"allOf", "anyOf", "oneOf", "prefixItems"}
# OpenAPI's keywords, which pydantic writes but JSON Schema does not have.
_OPENAPI_ONLY = {"discriminator"}


def subschemas(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """``schema`` and every schema inside it, depth first."""
    yield schema
    for keyword, value in schema.items():
        if keyword in _SCHEMA_VALUED and isinstance(value, dict):
            yield from subschemas(value)
        elif keyword in _SCHEMA_MAPS and isinstance(value, dict):
            for inner in value.values():
                yield from subschemas(inner)
        elif keyword in _SCHEMA_LISTS and isinstance(value, list):
            for inner in value:
                yield from subschemas(inner)


def event_json_schema() -> dict[str, Any]:
    """Plain JSON Schema 2020-12: compiles in strict validators such as ajv's default mode."""
    schema = TypeAdapter(AppointmentEvent).json_schema(mode="validation")
    for node in subschemas(schema):
        # pydantic's OpenAPI "discriminator" beside the oneOf: each branch's "type" const
        # already picks exactly one, so plain JSON Schema loses nothing without it.
        for keyword in _OPENAPI_ONLY & node.keys():
            del node[keyword]
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
