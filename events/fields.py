"""Field types of the event contract, each validating one rule strictly."""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Annotated
from zoneinfo import available_timezones

from pydantic import AfterValidator, BeforeValidator, Field, StrictInt, StringConstraints, WithJsonSchema

from telemed.events.rules import (
    EMAIL_SCHEMA_PATTERN,
    MAX_EMAIL_LENGTH,
    TEXT_SCHEMA_PATTERN,
    EmailProblem,
    ascii_email,
    text_problem,
    time_problem,
)

ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"

Identifier = Annotated[str, StringConstraints(strict=True, pattern=ID_PATTERN)]


def _displayable(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


# The rule (events.rules) keeps out what mail headers, calendar files and PostgreSQL
# text refuse, and what would let a name display as something else (bidi overrides,
# zero-width characters): refused at the edge, naming the field, instead of accepting
# a booking the pipeline can never deliver.
DisplayName = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_displayable),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 200, "pattern": TEXT_SCHEMA_PATTERN}),
]


def _ascii_email(value: str) -> str:
    try:
        return ascii_email(value)
    except EmailProblem as exc:
        raise ValueError(str(exc)) from None


_EMAIL_SCHEMA = {
    "type": "string", "minLength": 3, "maxLength": MAX_EMAIL_LENGTH, "pattern": EMAIL_SCHEMA_PATTERN,
    "description": "An e-mail address: ASCII before the @; the domain may be internationalised "
    "(it is stored in its IDNA form).",
}
# Stored and sent as events.rules.ascii_email gives it: an internationalised domain in
# its IDNA form; a non-ASCII local part is refused.
EmailAddress = Annotated[
    str,
    # Surrounding spaces trimmed, as pydantic's EmailStr did before this type.
    StringConstraints(strict=True, strip_whitespace=True, min_length=3, max_length=MAX_EMAIL_LENGTH),
    AfterValidator(_ascii_email),
    WithJsonSchema(_EMAIL_SCHEMA),
]
ZOOM_USER_ID = re.compile(r"^[A-Za-z0-9_-]{6,64}$")


def _zoom_user(value: str) -> str:
    # One type rather than a union, so an error is one message at the field's own path.
    if "@" in value:
        return _ascii_email(value)
    if not ZOOM_USER_ID.match(value):
        raise ValueError("must be an e-mail address or a Zoom user id (6 to 64 of A-Z, a-z, 0-9, '_', '-')")
    return value


ZoomUser = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=MAX_EMAIL_LENGTH),
    AfterValidator(_zoom_user),
    WithJsonSchema({"anyOf": [_EMAIL_SCHEMA, {"type": "string", "pattern": ZOOM_USER_ID.pattern}]}),
]
Version = Annotated[StrictInt, Field(ge=1, le=2**31 - 1)]
DurationMinutes = Annotated[StrictInt, Field(ge=1, le=1440)]

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


def _parse_rfc3339(value: object) -> datetime:
    # 9999-12-31T23:00:00+00:00 is valid RFC 3339, but its end time, its local time in a
    # zone east of UTC and its start link's expiry lie in year 10000 (an OverflowError,
    # once retried for ever): every time in the contract lies within events.rules' range.
    parsed = _parse_offset_time(value)
    problem = time_problem(parsed)
    if problem:
        raise ValueError(problem)
    return parsed


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
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": _RFC3339.pattern,
                    "description": "RFC 3339 with an offset, in the years 2000 to 2999 once in UTC."}),
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
