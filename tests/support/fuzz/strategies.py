"""Hypothesis strategies for hostile input: a valid event with one field broken, bodies
that are not events at all, and the values that break fields (wrong types, huge and
unicode strings, bad time zones, past or offset-less dates, impossible numbers).

A :class:`Mutation` remembers the path it broke, so a test can require that the
rejection names that field.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import available_timezones

from hypothesis import strategies as st

from telemed.samples import booking

Path = tuple[str, ...]
# Fields that may be left out without breaking the event (the rest are required).
OPTIONAL: set[Path] = {("appointment", "clinic"), ("appointment", "doctor", "zoom_user")}
CANCEL_OPTIONAL: set[Path] = {("appointment", "start_time"), ("appointment", "duration_minutes")}

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)
nasty_text = st.one_of(
    st.text(max_size=60),  # any unicode, control characters included
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=20).map(lambda s: s * 20),
    st.sampled_from(["", " ", "\x00", "a\x00b", "line\nbreak", "\r\nBcc: x@evil.example", "\u202e", "\ud800",
                     "💥" * 50, "x" * 5000, "'; drop table appointments; --", "../../etc/passwd", "%s%n",
                     "{{7*7}}", "<script>alert(1)</script>"]),
)
bad_times = st.one_of(
    st.sampled_from([
        "2020-01-01T10:00:00Z",  # past
        "2999-02-30T10:00:00Z",  # no such day
        "2999-01-01T10:00:00",  # no offset
        "2999-01-01 25:00:00Z", "2999-01-01T10:00:00+25:00", "tomorrow", "", "0", "2999-01-01",
        "1970-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59", "2999-01-01T10:00:00.1234567890Z",
    ]),
    st.datetimes(max_value=datetime(2020, 1, 1)).map(lambda d: d.isoformat() + "Z"),  # past, with an offset
    st.datetimes().map(lambda d: d.isoformat()),  # no offset
    nasty_text,
)
bad_zones = st.one_of(
    st.sampled_from(["Mars/Olympus_Mons", "europe/berlin", "UTC+1", "+01:00", "", "Europe/Berlin ", "../Berlin",
                     "Europe//Berlin", "x" * 65, "Europe/Berlin\x00"]),
    nasty_text.filter(lambda s: s not in available_timezones()),
)
bad_emails = st.sampled_from(["", "not-an-email", "a@", "@b.example", "a@b", "a b@c.example", "a@b..example",
                              "x" * 300 + "@example.org", "a@example.org\r\nBcc: y@evil.example"])
bad_ids = st.one_of(st.sampled_from(["", " ", "a b", "x" * 129, "é", "id/1", "id?x", "\x00"]),
                    st.text(min_size=1, max_size=30).filter(lambda s: any(not (c.isascii() and (c.isalnum() or c in "._:-")) for c in s)))
bad_ints = st.one_of(st.integers(max_value=0), st.integers(min_value=2**31), st.floats(allow_nan=False),
                     st.booleans(), st.text(max_size=5), st.none())
bad_types = st.sampled_from(["appointment.Booked", "appointment.deleted", "", "booked", None, 1, ["appointment.booked"]])


@dataclass(frozen=True)
class Mutation:
    event: Any
    path: Path  # the field that was broken
    how: str
    certain: bool = True  # no way this is a valid event

    def body(self) -> bytes:
        return json.dumps(self.event, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")


def base_event(kind: str = "appointment.booked", suffix: str = "1") -> dict[str, Any]:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5)
    return booking(f"FZ-{suffix}", 1, start, type=kind, event_id=f"evt-fz-{suffix}")


def _paths(node: Any, prefix: Path = ()) -> list[Path]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    return found


def _set(event: dict[str, Any], path: Path, value: Any) -> None:
    node = event
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _delete(event: dict[str, Any], path: Path) -> None:
    node = event
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]


STR_FIELDS = {"event_id", "type", "occurred_at", "id", "timezone", "name", "email", "zoom_user", "start_time"}
INT_FIELDS = {"version", "duration_minutes"}
DICT_FIELDS = {"appointment", "doctor", "patient", "clinic"}
SPECIFIC: dict[str, st.SearchStrategy[Any]] = {
    "start_time": bad_times, "occurred_at": bad_times, "timezone": bad_zones, "email": bad_emails,
    "zoom_user": bad_emails, "id": bad_ids, "event_id": bad_ids, "version": bad_ints,
    "duration_minutes": st.one_of(bad_ints, st.integers(min_value=1441)), "type": bad_types,
    "name": st.sampled_from(["", "   ", "x" * 201, "a\x00b", "a\nb", "\u2028"]),
}


def _wrong_type(name: str) -> st.SearchStrategy[Any]:
    if name in DICT_FIELDS:
        return json_values.filter(lambda v: not isinstance(v, dict))
    if name in INT_FIELDS:
        return json_values.filter(lambda v: not isinstance(v, int) or isinstance(v, bool))
    return json_values.filter(lambda v: not isinstance(v, str))


@st.composite
def mutations(draw: st.DrawFn) -> Mutation:
    """A valid event with exactly one thing wrong: a field removed, replaced or added.

    ``certain`` says the result cannot be valid (a required field gone, an unknown one
    added, a value of the wrong JSON type); otherwise (a bad-looking value of the right
    type, such as a past time on a cancel) it may be.
    """
    kind = draw(st.sampled_from(["appointment.booked", "appointment.rescheduled", "appointment.cancelled"]))
    event = copy.deepcopy(base_event(kind))
    optional = OPTIONAL | (CANCEL_OPTIONAL if kind == "appointment.cancelled" else set())
    path = draw(st.sampled_from(_paths(event)))
    how = draw(st.sampled_from(["remove", "replace", "add"]))
    if how == "remove" and path not in optional:
        _delete(event, path)
        return Mutation(event, path, "removed", certain=True)
    if how == "add":
        parent = path if isinstance(_get(event, path), dict) else path[:-1]
        siblings = _get(event, parent) if parent else event
        extra = draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in siblings))
        _set(event, (*parent, extra), draw(json_values))
        return Mutation(event, (*parent, extra), "unknown field added", certain=True)
    name = path[-1]
    specific = name in SPECIFIC and draw(st.booleans())
    value = draw(SPECIFIC[name] if specific else _wrong_type(name))
    _set(event, path, value)
    certain = not specific and not (path in optional and value is None)
    return Mutation(event, path, f"replaced with {'a bad value' if specific else 'a wrong type'}", certain)


def _get(event: Any, path: Path) -> Any:
    node = event
    for key in path:
        node = node[key] if isinstance(node, dict) else None
    return node


# Whole bodies that are not one event: any bytes, JSON of another shape, truncated JSON.
junk_bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda e, cut: json.dumps(e).encode()[:cut], st.just(base_event()), st.integers(1, 200)),
    st.sampled_from([b"", b"null", b"[]", b"{}", b"\xff\xfe", b"\"appointment.booked\"", b"{\"type\":",
                     b"\x00" * 10, b"[" * 5000, b"{\"a\":" * 3000 + b"1" + b"}" * 3000]),
)



def _repeat_a_key(text: str, draw: st.DrawFn) -> str:
    """One of the event's keys given twice in its object (an earlier value first)."""
    key = draw(st.sampled_from(["type", "event_id", "version", "start_time", "email", "id", "appointment"]))
    at = text.index(f'"{key}": ')
    return text[:at] + f'"{key}": {json.dumps(draw(json_values))}, ' + text[at:]


@st.composite
def strict_json_traps(draw: st.DrawFn) -> tuple[bytes, str]:
    """An event turned into a body that is not one strict JSON object, and the reason it
    must be refused with: a key twice, a huge integer, NaN or an overflowing number, or an
    event wrapped in a JSON string (decoded twice) or an array."""
    text = json.dumps(base_event(draw(st.sampled_from(["appointment.booked", "appointment.rescheduled"])),
                                 suffix=f"strict-{draw(st.integers(0, 10**6))}"))
    field = draw(st.sampled_from(['"version": 1', '"duration_minutes": 30']))
    kind = draw(st.sampled_from(["key twice", "huge integer", "constant", "overflow", "string", "array"]))
    if kind == "key twice":
        return _repeat_a_key(text, draw).encode(), "appears twice in one object"
    if kind == "huge integer":
        digits = draw(st.integers(min_value=101, max_value=20_000))
        number = draw(st.sampled_from(["", "-"])) + "1" + "0" * (digits - 1)
        return text.replace(field, field.split(":")[0] + ": " + number).encode(), "more than 100 digits"
    if kind == "constant":
        return text.replace(field, field.split(":")[0] + ": " + draw(st.sampled_from(
            ["NaN", "Infinity", "-Infinity"]))).encode(), "is not a JSON number"
    if kind == "overflow":
        number = draw(st.sampled_from(["1e309", "-2e400", "1" * 400 + ".5"]))
        return text.replace(field, field.split(":")[0] + ": " + number).encode(), "too large"
    if kind == "string":
        return json.dumps(text).encode(), "not a string"
    return f"[{text}]".encode(), "not an array"


def names_field(errors: list[dict[str, Any]], path: Path) -> bool:
    """Some error's location is the broken field, lies inside it, or (for a removed or
    mistyped container) is that container."""
    for error in errors:
        loc = tuple(str(part) for part in error.get("loc", []))
        if not loc:
            continue
        if loc[: len(path)] == path or path[: len(loc)] == loc:
            return True
    return False


def assert_well_formed(errors: list[dict[str, Any]]) -> None:
    """Errors a client can read: each a location and a short message, no traceback."""
    assert errors, "a rejection with no errors names nothing"
    for error in errors:
        assert set(error) == {"loc", "msg"}, error
        assert isinstance(error["loc"], list) and all(isinstance(p, (str, int)) for p in error["loc"]), error
        assert isinstance(error["msg"], str) and error["msg"].strip(), error
        assert "Traceback" not in error["msg"] and len(error["msg"]) <= 500, error
    json.dumps(errors)  # goes back to a client as JSON as it is
