"""``telemed publish`` input: an object, an array, or JSON lines."""

import json

from events.publish import PublishResult
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
        from events import parse_event

        event = parse_event(item)
        published.append(event.event_id)
        return PublishResult(event.event_id, "accepted", True)

    code = publish_stream(raw, out=lines.append, publish=fake_publish)
    assert code == 1
    assert published == [good["event_id"]]
    assert any(line.startswith("line 2: rejected") for line in lines)
    assert lines[-1] == "1 accepted, 0 duplicate, 1 rejected"
