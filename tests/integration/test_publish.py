"""``publish``: commit first, queue ids only, duplicates queue nothing, failures lose nothing."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from telemed.events import InvalidEvent
from telemed.events.publish import Publisher
from telemed.samples import sample_events
from telemed.store.models import InboxEvent

pytestmark = pytest.mark.integration


def test_accept_then_duplicate(database) -> None:  # type: ignore[no-untyped-def]
    queued: list[str] = []
    publisher = Publisher(database=database, enqueue=queued.append)
    event = sample_events(1).events[0]
    first = publisher.publish(event)
    again = publisher.publish(json.dumps(event))
    assert (first.status, first.queued) == ("accepted", True)
    assert (again.status, again.queued) == ("duplicate", False)
    assert queued == [event["event_id"]]  # only the id goes to the queue


def test_invalid_event_writes_nothing(database) -> None:  # type: ignore[no-untyped-def]
    publisher = Publisher(database=database, enqueue=lambda _: None)
    event = sample_events(1).events[0]
    event["appointment"]["duration_minutes"] = 0
    with pytest.raises(InvalidEvent):
        publisher.publish(event)
    with database.session() as s:
        assert s.exec(select(InboxEvent)).all() == []


def test_queue_down_before_commit_writes_nothing(database) -> None:  # type: ignore[no-untyped-def]
    def queue_down() -> None:
        raise ConnectionError("redis is down")

    publisher = Publisher(database=database, enqueue=lambda _: None, check_queue=queue_down)
    with pytest.raises(ConnectionError):
        publisher.publish(sample_events(1).events[0])
    with database.session() as s:
        assert s.exec(select(InboxEvent)).all() == []


def test_queue_lost_after_commit_keeps_the_event_for_the_reconciler(database) -> None:  # type: ignore[no-untyped-def]
    def broken(_: str) -> None:
        raise ConnectionError("redis went away")

    publisher = Publisher(database=database, enqueue=broken)
    result = publisher.publish(sample_events(1).events[0])
    assert (result.status, result.queued) == ("accepted", False)
    with database.session() as s:
        [row] = s.exec(select(InboxEvent)).all()
        assert row.status == "pending"
