"""What a notification says, one frozen type per recipient role.

Role filtering is by construction (DESIGN principle 4): :class:`PatientNotice` simply has
no field that could carry a host link, and it refuses any value that looks like one, so no
template, bug or future field can hand a patient the doctor's ``start_url``. Only
:class:`DoctorNotice` has a ``start_url``.

Secrets (links, passcode) and contact data are left out of ``repr`` so that a notice
that ends up in a log line or a traceback does not leak them (principle 5).
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from telemed.events.rules import MAX_EMAIL_LENGTH, email_problem, text_problem, time_problem
from telemed.foundation.urls import is_loopback_host
from telemed.workers.notifier.errors import InvalidMessage

MAX_DURATION_MINUTES = 1440  # the event contract's upper bound

# A Zoom host link is ``https://<host>.zoom.us/s/<meeting id>?zak=<host token>``; the
# patient's join link uses ``/j/``. Either marker is enough to refuse a value.
_HOST_LINK_MARKERS = re.compile(r"/s/|zak=", re.IGNORECASE)
# The administrator's address is configuration, not booking data: it may be on a local
# domain (ops@localhost) that the contract's rule refuses, so it only needs to be a
# plain ASCII address the MIME layer can write.
_CONFIGURED_ADDRESS = re.compile(r"^[!-?A-~]+@[!-?A-~]+$")


class NoticeKind(enum.StrEnum):
    """Why we write. A new kind needs its templates for every role (a unit test checks)."""

    INVITE = "invite"
    UPDATED = "updated"
    CANCELLED = "cancelled"
    REMINDER = "reminder"


class LocalSpan(NamedTuple):
    start: datetime
    end: datetime
    zone_name: str


@dataclass(frozen=True)
class MeetingTime:
    start_utc: datetime
    duration_minutes: int
    timezone: str  # IANA name, e.g. "Europe/Berlin"

    def __post_init__(self) -> None:
        if not isinstance(self.start_utc, datetime) or self.start_utc.utcoffset() is None:
            raise InvalidMessage("start_utc: must be a timezone-aware datetime")
        # The door's range (events.rules): outside it the end or local time may not exist.
        problem = time_problem(self.start_utc)
        if problem:
            raise InvalidMessage(f"start_utc: {problem}")
        # Normalise to UTC so equal instants compare and hash equal.
        object.__setattr__(self, "start_utc", self.start_utc.astimezone(UTC))
        if (
            isinstance(self.duration_minutes, bool)
            or not isinstance(self.duration_minutes, int)
            or not 1 <= self.duration_minutes <= MAX_DURATION_MINUTES
        ):
            raise InvalidMessage(f"duration_minutes: must be an integer in 1..{MAX_DURATION_MINUTES}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise InvalidMessage("timezone: not a known IANA time zone name") from None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self) -> LocalSpan:
        """Start and end as wall-clock times in the appointment's zone.

        The end is computed in UTC and then converted: adding minutes to a local time
        would be wall-clock arithmetic and gets DST transitions wrong.
        """
        end_utc = self.start_utc + timedelta(minutes=self.duration_minutes)
        return LocalSpan(
            self.start_utc.astimezone(self.zone), end_utc.astimezone(self.zone), self.timezone
        )


def _check_line(name: str, value: object, *, optional: bool = False, max_len: int = 200) -> None:
    """Single-line text: it may end up in a mail header, so no control characters."""
    if value is None and optional:
        return
    if not isinstance(value, str) or not value.strip():
        raise InvalidMessage(f"{name}: must be a non-empty string")
    if len(value) > max_len:
        raise InvalidMessage(f"{name}: longer than {max_len} characters")
    # The door's rule (events.rules), checked again for rows stored before it existed.
    problem = text_problem(value)
    if problem:
        raise InvalidMessage(f"{name}: {problem}")


def _check_email(name: str, value: object) -> None:
    _check_line(name, value, max_len=MAX_EMAIL_LENGTH)
    assert isinstance(value, str)
    problem = email_problem(value)
    if problem:
        raise InvalidMessage(f"{name}: {problem}")


def _check_link(name: str, value: object) -> None:
    if value is None:
        return
    _check_line(name, value, max_len=2048)
    assert isinstance(value, str)
    parts = urlsplit(value)
    # https only (plain http for the local Zoom simulator): this also keeps
    # ``javascript:`` and friends out of the HTML templates' hrefs.
    if not parts.hostname or not (
        parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname))
    ):
        raise InvalidMessage(f"{name}: must be an https:// link")


def _check_common(notice: PatientNotice | DoctorNotice) -> None:
    if not isinstance(notice.kind, NoticeKind):
        try:
            object.__setattr__(notice, "kind", NoticeKind(notice.kind))
        except ValueError:
            raise InvalidMessage("kind: not a known notice kind") from None
    _check_line("appointment_id", notice.appointment_id, max_len=128)
    if (
        isinstance(notice.version, bool)
        or not isinstance(notice.version, int)
        or notice.version < 1
    ):
        raise InvalidMessage("version: must be an integer >= 1")
    _check_line("clinic_name", notice.clinic_name, optional=True)
    if notice.time is not None and not isinstance(notice.time, MeetingTime):
        raise InvalidMessage("time: must be a MeetingTime or None")
    if notice.kind is not NoticeKind.CANCELLED and notice.time is None:
        raise InvalidMessage(f"time: required for a {notice.kind.value} notice")


def _strings(value: object) -> Iterator[str]:
    """Every string inside a notice, nested dataclasses included."""
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _strings(getattr(value, f.name))


def looks_like_host_link(text: str) -> bool:
    """True if ``text`` carries a Zoom start-link marker, also when percent-encoded."""
    for _ in range(3):  # undo up to three layers of %-encoding
        if _HOST_LINK_MARKERS.search(text):
            return True
        decoded = unquote(text)
        if decoded == text:
            return False
        text = decoded
    return bool(_HOST_LINK_MARKERS.search(text))


@dataclass(frozen=True)
class PatientNotice:
    """Everything a patient may learn. There is deliberately no host-link field."""

    kind: NoticeKind
    appointment_id: str
    version: int
    patient_name: str
    patient_email: str = field(repr=False)
    doctor_name: str
    clinic_name: str | None
    time: MeetingTime | None
    join_url: str | None = field(repr=False)
    passcode: str | None = field(repr=False)

    def __post_init__(self) -> None:
        _check_common(self)
        _check_line("patient_name", self.patient_name)
        _check_email("patient_email", self.patient_email)
        _check_line("doctor_name", self.doctor_name)
        _check_link("join_url", self.join_url)
        _check_line("passcode", self.passcode, optional=True, max_len=32)
        if self.kind is NoticeKind.CANCELLED:
            if self.join_url is not None or self.passcode is not None:
                raise InvalidMessage("join_url/passcode: a cancelled notice carries no link")
        elif self.join_url is None:
            raise InvalidMessage(f"join_url: required for a {self.kind.value} notice")
        # Defence in depth: even a start link smuggled into a name is refused. The
        # message names the field only; echoing the value would leak the credential.
        for f in dataclasses.fields(self):
            if any(looks_like_host_link(s) for s in _strings(getattr(self, f.name))):
                raise InvalidMessage(f"{f.name}: looks like a Zoom host (start) link")


@dataclass(frozen=True)
class DoctorNotice:
    """What the assigned doctor gets; the only type with a ``start_url``.

    ``start_url`` may be Zoom's fresh start link or our signed start link that fetches
    one at click time. Non-cancelled notices need at least one of the two links.
    """

    kind: NoticeKind
    appointment_id: str
    version: int
    doctor_name: str
    doctor_email: str = field(repr=False)
    patient_name: str
    clinic_name: str | None
    time: MeetingTime | None
    start_url: str | None = field(repr=False)
    join_url: str | None = field(repr=False)
    # True when start_url is our signed link (fetches a fresh Zoom link at click time and
    # works until the appointment ends) rather than Zoom's own start_url (about 2 hours).
    start_url_signed: bool = False

    def __post_init__(self) -> None:
        _check_common(self)
        _check_line("doctor_name", self.doctor_name)
        _check_email("doctor_email", self.doctor_email)
        _check_line("patient_name", self.patient_name)
        _check_link("start_url", self.start_url)
        _check_link("join_url", self.join_url)
        if self.kind is NoticeKind.CANCELLED:
            if self.start_url is not None or self.join_url is not None:
                raise InvalidMessage("start_url/join_url: a cancelled notice carries no link")
        elif self.start_url is None and self.join_url is None:
            raise InvalidMessage(f"start_url: required for a {self.kind.value} notice")
        # Only start_url may hold a host link; anywhere else it would be a leak waiting
        # to happen (e.g. rendered into a subject line).
        for f in dataclasses.fields(self):
            if f.name == "start_url":
                continue
            if any(looks_like_host_link(s) for s in _strings(getattr(self, f.name))):
                raise InvalidMessage(f"{f.name}: looks like a Zoom host (start) link")


@dataclass(frozen=True)
class AdminAlert:
    """A free-form operational alert for the administrator."""

    subject: str
    body: str
    admin_email: str = field(repr=False)
    # A clinic's other admins: the same mail goes to all of them at once.
    also_to: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        _check_line("subject", self.subject, max_len=200)
        if not isinstance(self.body, str):
            raise InvalidMessage("body: must be a string")
        for address in (self.admin_email, *self.also_to):
            _check_line("admin_email", address, max_len=MAX_EMAIL_LENGTH)
            if not _CONFIGURED_ADDRESS.match(address):
                raise InvalidMessage("admin_email: not a plain ASCII e-mail address")
