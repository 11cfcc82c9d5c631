"""The crash run's plan (pure): what it publishes is what the checks expect."""

from __future__ import annotations

from collections import Counter

from telemed.events.parsing import parse_event
from tests.support.chaos.plan import build_plan


def test_the_plan_is_valid_varied_and_repeatable() -> None:
    plan = build_plan(200, seed=3)
    again = build_plan(200, seed=3)
    assert [e["event_id"] for e in plan.deliveries] == [e["event_id"] for e in again.deliveries]
    assert len(plan.histories) == 200
    assert plan.count("rescheduled") > 40 and plan.count("cancelled") > 20
    assert plan.swapped > 0 and plan.repeated > 0
    counts = Counter(e["event_id"] for e in plan.deliveries)
    assert sum(counts.values()) - len(counts) == plan.repeated
    for history in plan.histories.values():
        versions = [e["appointment"]["version"] for e in history.events]
        assert versions == list(range(1, len(versions) + 1))
        assert len(set(history.starts.values())) == len(history.starts)  # every move changes the time
        for event in history.events:
            parse_event(event)  # every event is valid v1
    swapped = 0
    for history in plan.histories.values():
        order = [e["appointment"]["version"] for e in plan.deliveries
                 if e["appointment"]["id"] == history.appointment_id]
        first_seen = list(dict.fromkeys(order))
        swapped += first_seen != sorted(first_seen)
    assert swapped == plan.swapped
