"""``events.strict_json``: one reading of a body, or a refusal that says why."""

from __future__ import annotations

import json
import re

import pytest

from telemed.events import InvalidEvent, strict_json
from telemed.events.parsing import parse_event
from telemed.samples import sample_events


def _event() -> dict[str, object]:
    return sample_events(1).events[0]


def test_a_key_given_twice_is_refused_naming_the_key() -> None:
    body = '{"type": "appointment.booked", "type": "appointment.cancelled"}'
    assert json.loads(body)["type"] == "appointment.cancelled"  # what json.loads would have done
    with pytest.raises(strict_json.RefusedJSON, match='the key "type" appears twice'):
        strict_json.loads(body)
    nested = '{"appointment": {"patient": {"email": "a@example.org", "email": "b@example.org"}}}'
    with pytest.raises(strict_json.RefusedJSON, match='"email"'):
        strict_json.loads(nested)
    assert strict_json.loads('[{"a": 1}, {"a": 2}]') == [{"a": 1}, {"a": 2}]  # one key per object


@pytest.mark.parametrize("digits", [strict_json.MAX_INTEGER_DIGITS + 1, 4301, 50_000])
def test_an_integer_with_too_many_digits_is_refused_before_int_is_called(digits: int) -> None:
    for sign in ("", "-"):
        with pytest.raises(strict_json.RefusedJSON, match=f"more than {strict_json.MAX_INTEGER_DIGITS} digits"):
            strict_json.loads('{"version": ' + sign + "9" * digits + "}")
    at_limit = "9" * strict_json.MAX_INTEGER_DIGITS
    assert strict_json.loads(f"[{at_limit}, -{at_limit}]") == [int(at_limit), -int(at_limit)]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "-1e400"])
def test_nan_infinity_and_overflowing_numbers_are_refused(number: str) -> None:
    with pytest.raises(strict_json.RefusedJSON):
        strict_json.loads('{"duration_minutes": ' + number + "}")
    assert strict_json.loads("[1.5e3, -0.25]") == [1500.0, -0.25]


def test_one_decode_only_a_string_holding_json_is_a_string() -> None:
    inner = json.dumps(_event())
    assert strict_json.loads(json.dumps(inner)) == inner
    with pytest.raises(strict_json.RefusedJSON, match="must be a JSON object, not a string"):
        strict_json.loads_object(json.dumps(inner))
    for other, kind in (("[]", "an array"), ("null", "null"), ("true", "a boolean"), ("3", "a number")):
        with pytest.raises(strict_json.RefusedJSON, match=f"not {kind}"):
            strict_json.loads_object(other)


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe{}", '{"a": 1}'.encode("utf-16"), b"[" * 5000, b""])
def test_what_is_not_json_text_is_invalid_but_not_refused(raw: bytes) -> None:
    with pytest.raises(strict_json.InvalidJSON) as caught:
        strict_json.loads_object(raw)
    assert not isinstance(caught.value, strict_json.RefusedJSON)


def test_parse_event_reads_text_strictly_once() -> None:
    event = _event()
    text = json.dumps(event)
    assert parse_event(text).event_id == event["event_id"]
    twice = text.replace('"type": ', '"type": "appointment.cancelled", "type": ', 1)
    huge = re.sub(r'"version": \d+', '"version": ' + "1" * 5000, text)
    for bad, reason in ((json.dumps(text), "must be a JSON object"), (twice, 'the key "type" appears twice'),
                        (huge, "more than 100 digits")):
        with pytest.raises(InvalidEvent, match=reason):
            parse_event(bad)
