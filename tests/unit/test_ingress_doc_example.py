"""docs/ingress.md's example event is read from the page itself, so the page and this test
cannot drift: it must be a complete ``appointment.booked`` that the committed JSON Schema
and the models both accept."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema

from telemed.events import BookedEvent, parse_event, strict_json

DOCS = Path(__file__).resolve().parents[2] / "docs"
HEADING = "## An example event (`event.json`)"


def _example() -> str:
    page = (DOCS / "ingress.md").read_text()
    assert HEADING in page, f"docs/ingress.md has no section {HEADING!r}"
    section = page.split(HEADING, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```json\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, f"the example section should hold one json block, found {len(blocks)}"
    return str(blocks[0])


def _properties(schema: dict[str, Any], name: str) -> set[str]:
    return set(schema["$defs"][name]["properties"])


def test_the_example_is_strict_json_and_valid_against_the_committed_schema() -> None:
    event = strict_json.loads_object(_example())
    schema = json.loads((DOCS / "event.schema.json").read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(event)


def test_the_example_is_a_complete_booking_the_models_accept() -> None:
    text = _example()
    event = strict_json.loads_object(text)
    # Validated as of its own occurred_at: the start must be in the future then, whatever today is.
    occurred_at = datetime.fromisoformat(event["occurred_at"])
    parsed = parse_event(text, now=occurred_at)
    assert isinstance(parsed, BookedEvent) and parsed.type == "appointment.booked"
    schema = json.loads((DOCS / "event.schema.json").read_text())
    appointment = event["appointment"]
    # Complete: every field of the contract is shown, the optional ones too.
    assert set(event) == _properties(schema, "BookedEvent")
    assert set(appointment) == _properties(schema, "ScheduledAppointment")
    for part, name in (("doctor", "Doctor"), ("patient", "Patient"), ("clinic", "Clinic")):
        assert set(appointment[part]) == _properties(schema, name), part


def test_the_curl_example_sends_this_file() -> None:
    page = (DOCS / "ingress.md").read_text()
    curl = page.split("## curl (shell)", 1)[1].split("\n## ", 1)[0]
    assert "$(cat event.json)" in curl and page.index(HEADING) < page.index("## curl (shell)")
