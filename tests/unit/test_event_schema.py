"""docs/event.schema.json is generated from the models; this keeps it in sync."""

from pathlib import Path

import jsonschema

from events.schema import event_json_schema, render_schema
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
