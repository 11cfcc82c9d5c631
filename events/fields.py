"""Field types of the event contract, each validating one rule strictly."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated
from zoneinfo import available_timezones

from pydantic import AfterValidator, BeforeValidator, Field, StrictInt, StringConstraints, WithJsonSchema

ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"

Identifier = Annotated[str, StringConstraints(strict=True, pattern=ID_PATTERN)]
# Names end up in mail headers, calendar files and PostgreSQL text, which all refuse
# control characters (NUL, line breaks): reject them at the edge, naming the field,
# instead of accepting a booking the pipeline can never deliver (found by tests/fuzz).
_CONTROL = re.compile("[\x00-\x1f\x7f\u2028\u2029]")


def _printable(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters or line breaks")
    return value


DisplayName = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_printable),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 200,
                    "pattern": "^[^\\x00-\\x1f\\x7f\\u2028\\u2029]*$"}),
]
Version = Annotated[StrictInt, Field(ge=1, le=2**31 - 1)]
DurationMinutes = Annotated[StrictInt, Field(ge=1, le=1440)]

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


def _parse_rfc3339(value: object) -> datetime:
    return _within_utc_range(_parse_offset_time(value))


def _within_utc_range(value: datetime) -> datetime:
    # 9999-12-31T23:59:59-01:00 is a valid RFC 3339 string but lies in year 10000 in UTC,
    # where the store keeps times: found by the fuzzer as an OverflowError from the store.
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the years 1 to 9999 once converted to UTC") from None
    return value


def _parse_offset_time(value: object) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("must carry a UTC offset")
        return value
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 string such as 2026-12-03T09:30:00+01:00")
    if not _RFC3339.match(value):
        raise ValueError("must be RFC 3339 with an offset, such as 2026-12-03T09:30:00+01:00")
    text = value
    fraction = re.search(r"\.(\d+)", text)
    if fraction and len(fraction.group(1)) > 6:  # datetime keeps microseconds only
        text = text.replace(fraction.group(0), "." + fraction.group(1)[:6], 1)
    try:
        return datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    except ValueError:
        raise ValueError("is not a real date and time") from None


Rfc3339 = Annotated[
    datetime,
    BeforeValidator(_parse_rfc3339),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": _RFC3339.pattern}),
]


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _known_zone(value: str) -> str:
    if value not in _zones():
        raise ValueError("is not an IANA time zone name such as Europe/Berlin")
    return value


IanaZone = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=64),
    AfterValidator(_known_zone),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 64, "examples": ["Europe/Berlin"]}),
]
