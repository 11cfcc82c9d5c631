"""The field rules the door and the pipeline share: one definition of each.

The door (``events.fields``, behind ``POST /v1/events`` and ``telemed publish``) refuses
what breaks a rule, naming the field; the notifier (``workers.notifier.messages``) checks
the same rule again for rows stored before it existed. Whatever the door accepts, the
pipeline can render, encode as MIME and iCalendar, sign into a start link and store
(tests/fuzz/test_accepted_is_deliverable.py proves it). docs/ingress.md, "Field rules",
explains each decision.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

# Every character of a display name must be something a reader sees: a letter, mark,
# number, punctuation, symbol or space. Refused: Unicode's "other" categories, i.e.
# control characters C0 and C1 (Cc: mail headers, calendars and PostgreSQL refuse them),
# format characters (Cf: bidirectional overrides, isolates and marks, zero-width spaces
# and joiners, the BOM, soft hyphen: invisible, they let a name display as something it
# is not in a mail or on the admin page), surrogates (Cs: not encodable as UTF-8),
# private-use (Co: no agreed glyph) and unassigned code points (Cn), plus the line and
# paragraph separators (Zl, Zp: a line break to str.splitlines and to mail headers).
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
TEXT_PROBLEM = "must hold only visible characters and spaces (no control, format, zero-width, " \
    "bidirectional, private-use or unassigned characters, no line breaks)"
# The same rule for JSON Schema, as far as a regex portable between ECMA-262 (ajv) and
# Python (jsonschema) can say it: the Basic Multilingual Plane's control, format,
# separator, surrogate and private-use characters (Unicode 14). The server's check is
# the full rule (astral format and private-use characters, unassigned code points too);
# tests/unit/test_field_rules.py holds the two together.
TEXT_SCHEMA_PATTERN = (
    "^[^\\x00-\\x1f\\x7f-\\x9f\\xad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890\\u0891\\u08e2"
    "\\u180e\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u2064\\u2066-\\u206f\\ud800-\\uf8ff"
    "\\ufeff\\ufff9-\\ufffb]*$"
)

MAX_EMAIL_LENGTH = 254
# Mail leaves through an ASCII MIME layer to servers that may not offer SMTPUTF8, so the
# part before the @ must be ASCII. An internationalised domain is fine: it is stored and
# sent in its ASCII (IDNA, "xn--") form, which every mail server and calendar takes.
EMAIL_SCHEMA_PATTERN = "^[\\x21-\\x3f\\x41-\\x7e]+@[^@\\s]+$"
NON_ASCII_LOCAL_PART = (
    "must have only ASCII characters before the @ (internationalised mailboxes need SMTPUTF8, "
    "which is not supported); an internationalised domain after the @ is fine"
)

# Every time in the contract lies in these years (UTC). Far enough from datetime's year
# 1 and 9999 that the end time (+24 h), the start link's expiry (+30 min), reminders and
# the local time in any IANA zone (about ±14 h) stay representable, in Python, iCalendar
# and both databases' timestamp columns.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)  # exclusive
TIME_PROBLEM = "must lie in the years 2000 to 2999 (UTC)"


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be a display name (a person's, a clinic's), or None."""
    if any(unicodedata.category(ch) in REFUSED_CATEGORIES for ch in value):
        return TEXT_PROBLEM
    return None


class EmailProblem(ValueError):
    """The address breaks the rule; the message says why (a field prefix is the caller's)."""


@lru_cache(maxsize=4096)  # the notifier checks the same few addresses over and over
def ascii_email(value: str) -> str:
    """``value`` as the address we store and send: its domain in ASCII (IDNA) form.

    Raises :class:`EmailProblem` for anything else, a non-ASCII local part included.
    """
    if len(value) > MAX_EMAIL_LENGTH:
        raise EmailProblem(f"must be an e-mail address of at most {MAX_EMAIL_LENGTH} characters")
    local, at, _domain = value.rpartition("@")
    if at and not local.isascii():
        raise EmailProblem(NON_ASCII_LOCAL_PART)
    try:
        parts = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise EmailProblem(f"is not a valid e-mail address: {exc}") from None
    address = parts.ascii_email
    if address is None or not address.isascii():  # allow_smtputf8=False promises this
        raise EmailProblem(NON_ASCII_LOCAL_PART)
    return address


def email_problem(value: str) -> str | None:
    """Why ``value`` cannot be sent to as it is stored (already in ASCII form), or None."""
    try:
        normalised = ascii_email(value)
    except EmailProblem as exc:
        return str(exc)
    if normalised.lower() != value.lower():  # e.g. an old row with a Unicode domain
        return "must be stored in its ASCII form, the domain in IDNA (xn--) form"
    return None


def time_problem(value: datetime) -> str | None:
    """Why ``value`` is not a time every part of the pipeline can represent, or None."""
    if value.utcoffset() is None:
        return "must carry a UTC offset"
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        return TIME_PROBLEM
    if not EARLIEST <= utc < LATEST:
        return TIME_PROBLEM
    return None
