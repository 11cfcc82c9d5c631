"""docs/event.schema.json is generated from the models; this keeps it in sync."""

import json
from pathlib import Path

import jsonschema

from telemed.events.schema import event_json_schema, render_schema, subschemas
from telemed.samples import sample_events

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "event.schema.json"


def test_committed_schema_matches_the_models() -> None:
    assert SCHEMA_FILE.read_text() == render_schema(), (
        "docs/event.schema.json is out of date: run "
        "python -c 'from events.schema import write_schema; from pathlib import Path; "
        "write_schema(Path(\"docs/event.schema.json\"))'"
    )


def test_sample_events_validate_against_the_schema() -> None:
    validator = jsonschema.Draft202012Validator(event_json_schema())
    for event in sample_events(10).events:
        validator.validate(event)


def test_schema_rejects_unknown_fields() -> None:
    validator = jsonschema.Draft202012Validator(event_json_schema())
    event = sample_events(1).events[0]
    event["surprise"] = True
    assert list(validator.iter_errors(event))


def _standard_keywords() -> set[str]:
    """Every keyword of JSON Schema 2020-12, read from its vocabularies' meta-schemas."""
    from jsonschema_specifications import REGISTRY

    vocabularies = ("core", "applicator", "unevaluated", "validation", "meta-data", "format-annotation", "content")
    keywords: set[str] = set()
    for vocabulary in vocabularies:
        keywords |= set(REGISTRY.contents(f"https://json-schema.org/draft/2020-12/meta/{vocabulary}")["properties"])
    return keywords


def test_the_published_schema_is_plain_json_schema_2020_12() -> None:
    """What ajv's default strict mode checks: a valid 2020-12 schema whose every keyword is
    a standard one (pydantic's OpenAPI "discriminator" once made ajv refuse the file)."""
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    standard = _standard_keywords()
    unknown = {keyword for node in subschemas(schema) for keyword in node if keyword not in standard}
    assert unknown == set()
    # Formats ajv-formats knows (ajv itself knows none: it needs that plug-in for formats).
    formats = {node["format"] for node in subschemas(schema) if "format" in node}
    assert formats <= {"date-time", "email", "uri"}


def test_the_keyword_walk_sees_every_subschema() -> None:
    """The walk reaches a keyword nested anywhere; pydantic's own output has one to find."""
    from pydantic import TypeAdapter

    from telemed.events.models import AppointmentEvent

    raw = TypeAdapter(AppointmentEvent).json_schema(mode="validation")
    assert "discriminator" in {keyword for node in subschemas(raw) for keyword in node}
    assert len(list(subschemas(json.loads(SCHEMA_FILE.read_text())))) > 40
