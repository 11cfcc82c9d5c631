"""The one JSON reader for untrusted input (``/v1/events``, ``/zoom/webhook``, ``telemed publish``).

Stricter than ``json.loads``, so that telemed and the sender cannot read one body two ways:

- one decode of UTF-8 text (a JSON string holding JSON is a string, never decoded again);
- a key given twice in one object is refused, naming the key (``json.loads`` keeps the
  last, another parser may keep the first);
- an integer of more than ``MAX_INTEGER_DIGITS`` digits is refused before ``int()`` sees it
  (``int()`` raises past 4,300 digits, and no number telemed reads needs more than 19);
- ``NaN``, ``Infinity`` and numbers too large for a float are refused (not JSON, RFC 8259).

``InvalidJSON`` is for a body that is not JSON text at all (syntax, encoding, nesting);
``RefusedJSON``, its subclass, for well-formed JSON that breaks one of the rules above.
Both messages are safe to return to the sender: they name a key or a limit, never a value.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_INTEGER_DIGITS = 100


class InvalidJSON(ValueError):
    """The input is not strict JSON; the message says why."""


class RefusedJSON(InvalidJSON):
    """Well-formed JSON that breaks a rule: a duplicate key, a huge or non-finite number."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise RefusedJSON(f"the key {json.dumps(key)} appears twice in one object")
        result[key] = value
    return result


def _integer(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise RefusedJSON(f"an integer has more than {MAX_INTEGER_DIGITS} digits")
    return int(digits)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise RefusedJSON("a number is too large")
    return value


def _constant(name: str) -> Any:
    raise RefusedJSON(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_int=_integer, parse_float=_float,
                            parse_constant=_constant)


def loads(raw: bytes | bytearray | str) -> Any:
    """Decode one JSON document of any kind (object, array, string, number...)."""
    if isinstance(raw, (bytes, bytearray)):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidJSON(f"not UTF-8 (byte {exc.start})") from None
    else:
        text = raw
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise InvalidJSON(str(exc)) from None
    except RecursionError:
        raise InvalidJSON("nested too deeply") from None


def loads_object(raw: bytes | bytearray | str) -> dict[str, Any]:
    """Decode one JSON object; any other top level (a string holding JSON too) is refused."""
    data = loads(raw)
    if not isinstance(data, dict):
        raise RefusedJSON(f"the top level must be a JSON object, not {_kind(data)}")
    return data


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
