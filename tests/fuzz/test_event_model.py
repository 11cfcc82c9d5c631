"""The event model under hypothesis: whatever comes in, the answer is an event or an
``InvalidEvent`` whose errors name the broken field; never another exception.

Pure (no services): it runs with the unit tests and tries a few hundred inputs.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from telemed.events import InvalidEvent
from telemed.events.parsing import parse_event
from tests.support.fuzz.settings import fuzz
from tests.support.fuzz.strategies import (
    Mutation,
    assert_well_formed,
    json_values,
    junk_bodies,
    mutations,
    names_field,
)

FUZZ = fuzz(400)


@FUZZ
@given(mutations())
def test_one_broken_field_is_named(mutation: Mutation) -> None:
    try:
        event = parse_event(mutation.event)
    except InvalidEvent as exc:
        assert_well_formed(exc.errors)
        assert names_field(exc.errors, mutation.path), (
            f"{mutation.how} at {'.'.join(mutation.path)}, but the errors name {[e['loc'] for e in exc.errors]}")
        return
    assert not mutation.certain, f"accepted an event with {mutation.how} at {'.'.join(mutation.path)}"
    assert event.event_id


@FUZZ
@given(junk_bodies)
def test_junk_bodies_are_rejected_cleanly(body: bytes) -> None:
    try:
        parse_event(body)
    except InvalidEvent as exc:
        assert_well_formed(exc.errors)
    else:  # a truncated event that happens to be whole is still fine
        json.loads(body)


@FUZZ
@given(st.one_of(json_values, st.binary(max_size=50), st.integers(), st.floats()))
def test_any_python_value_is_rejected_cleanly(value: Any) -> None:
    try:
        parse_event(value)
    except InvalidEvent as exc:
        assert_well_formed(exc.errors)
