"""``telemed publish`` input: an object, an array, or JSON lines."""

import json

from telemed.events.publish import PublishResult
from telemed.publish_cli import publish_stream, split_events
from telemed.samples import sample_events


def test_three_input_shapes() -> None:
    events = sample_events(2).events[:2]
    assert [w for w, _ in split_events(json.dumps(events[0]).encode())] == ["event"]
    assert [w for w, _ in split_events(json.dumps(events).encode())] == ["item 0", "item 1"]
    lines = "\n".join(json.dumps(e) for e in events).encode()
    assert [w for w, _ in split_events(lines)] == ["line 1", "line 2"]


def test_bad_lines_are_rejected_by_name_and_the_rest_published() -> None:
    good = sample_events(1).events[0]
    raw = (json.dumps(good) + "\n{not json\n").encode()
    published: list[str] = []
    lines: list[str] = []

    def fake_publish(item):  # type: ignore[no-untyped-def]
        from telemed.events import parse_event

        event = parse_event(item)
        published.append(event.event_id)
        return PublishResult(event.event_id, "accepted", True)

    code = publish_stream(raw, out=lines.append, publish=fake_publish)
    assert code == 1
    assert published == [good["event_id"]]
    assert any(line.startswith("line 2: rejected") for line in lines)
    assert lines[-1] == "1 accepted, 0 duplicate, 1 rejected"


def _publish_by_parsing(published: list[str]):  # type: ignore[no-untyped-def]
    def publish(item):  # type: ignore[no-untyped-def]
        from telemed.events import parse_event

        event = parse_event(item)
        published.append(event.event_id)
        return PublishResult(event.event_id, "accepted", True)

    return publish


def _traps() -> tuple[dict, list[str], list[str]]:  # type: ignore[type-arg]
    """A good event, and three texts that are not one strict JSON object, with the reason each gets."""
    good, other = sample_events(2).events[:2]
    text = json.dumps(other)
    traps = [text.replace('"version": ', '"version": ' + "9" * 5000 + ", \"_\": ", 1),  # huge, with an extra key
             text.replace('"type": ', '"type": "appointment.cancelled", "type": ', 1),
             json.dumps(text)]  # a JSON string holding the event
    reasons = ["an integer has more than 100 digits", 'the key "type" appears twice in one object',
               "must be a JSON object"]
    return good, traps, reasons


def test_an_array_item_that_is_not_strict_json_is_rejected_by_name_and_the_rest_published() -> None:
    good, traps, reasons = _traps()
    raw = ("[" + ", ".join([*traps, json.dumps(good)]) + "]").encode()
    published: list[str] = []
    lines: list[str] = []
    code = publish_stream(raw, out=lines.append, publish=_publish_by_parsing(published))
    assert code == 1 and published == [good["event_id"]]
    for index, reason in enumerate(reasons):
        at = lines.index(f"item {index}: rejected")
        assert lines[at + 1] == f"  (event): {reason}"
    assert lines[-1] == "1 accepted, 0 duplicate, 3 rejected"


def test_a_json_line_that_is_not_strict_json_is_rejected_by_name_and_the_rest_published() -> None:
    good, traps, reasons = _traps()
    raw = "\n".join([*traps, json.dumps(good)]).encode()
    published: list[str] = []
    lines: list[str] = []
    code = publish_stream(raw, out=lines.append, publish=_publish_by_parsing(published))
    assert code == 1 and published == [good["event_id"]]
    for number, reason in enumerate(reasons, start=1):
        at = lines.index(f"line {number}: rejected")
        assert lines[at + 1] == f"  (event): {reason}"
    assert lines[-1] == "1 accepted, 0 duplicate, 3 rejected"


def test_a_single_event_that_is_not_strict_json_is_rejected_not_a_traceback() -> None:
    _, traps, reasons = _traps()
    for trap, reason in zip(traps, reasons, strict=True):
        lines: list[str] = []
        assert publish_stream(trap.encode(), out=lines.append, publish=_publish_by_parsing([])) == 1
        assert lines == ["event: rejected", f"  (event): {reason}", "0 accepted, 0 duplicate, 1 rejected"]
