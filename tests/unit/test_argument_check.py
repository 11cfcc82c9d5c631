"""Poison-message rules as plain functions: which arguments cannot be a call of an actor."""

from __future__ import annotations

from typing import Any

from telemed.workers.queue.poison import argument_problem


def by_id(event_id: str) -> None: ...


def by_number(outbox_id: int) -> None: ...


def by_dicts(message_data: dict[str, Any], retry_info: dict[str, Any]) -> None: ...


def test_a_fitting_call_has_no_problem() -> None:
    assert argument_problem(by_id, ("evt-1",), {}) is None
    assert argument_problem(by_number, (7,), {}) is None
    assert argument_problem(by_dicts, ({"args": [1]}, {"retries": 2}), {}) is None


def test_wrong_types_are_named() -> None:
    assert argument_problem(by_id, (123,), {}) == "event_id must be str, not int"
    assert argument_problem(by_number, ("7",), {}) == "outbox_id must be int, not str"
    assert argument_problem(by_number, (True,), {}) == "outbox_id must be int, not bool"
    assert argument_problem(by_number, (None,), {}) == "outbox_id must be int, not NoneType"
    assert argument_problem(by_dicts, ([], {}), {}) == "message_data must be dict, not list"


def test_wrong_counts_and_names_are_named() -> None:
    assert argument_problem(by_id, (), {}) == "missing a required argument: 'event_id'"
    assert argument_problem(by_id, ("a", "b"), {}) == "too many positional arguments"
    assert argument_problem(by_id, ("a",), {"bogus": 1}) == "got an unexpected keyword argument 'bogus'"


def test_the_real_actors_are_checked_through_their_wrappers() -> None:
    from dramatiq.brokers.stub import StubBroker

    from telemed.workers.actors import declare_actors

    actors = declare_actors(StubBroker(), context=lambda: None)  # type: ignore[arg-type,return-value]

    assert argument_problem(actors.process_event.fn, (1,), {}) == "event_id must be str, not int"
    assert argument_problem(actors.deliver_notification.fn, ("x",), {}) == "outbox_id must be int, not str"
    assert argument_problem(actors.sync_meeting.fn, ("A-1",), {}) is None
