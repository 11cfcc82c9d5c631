"""Calendar invitations (.ics, iTIP) so the recipient's calendar adds, moves and removes
the appointment by itself.

- ``UID`` is stable per appointment, so an update or cancel replaces the same entry;
- ``SEQUENCE`` is the appointment's version, which only grows, so calendars apply the
  newest change and ignore a late older one;
- ``METHOD:REQUEST`` for a new or moved appointment, ``METHOD:CANCEL`` (with
  ``STATUS:CANCELLED``) for a cancelled one.

Times are written in UTC: every calendar shows them in its owner's own zone. A Zoom host
link (with its ZAK) is never written into a calendar entry, which lives on, syncs to
phones and is shared with assistants; the builder refuses one outright.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message

from icalendar import Calendar, Event, vCalAddress, vText

from telemed.workers.notifier import mime
from telemed.workers.notifier.errors import InvalidMessage
from telemed.workers.notifier.messages import looks_like_host_link

PRODID = "-//telemed//appointment invitations//EN"
FILENAME = "invite.ics"
# RFC 5545 folds content lines longer than 75 octets; icalendar folds at this limit.
_FOLD_LIMIT = 75


class Method(enum.StrEnum):
    REQUEST = "REQUEST"
    CANCEL = "CANCEL"


@dataclass(frozen=True)
class Invitation:
    appointment_id: str
    version: int
    method: Method
    start: datetime | None
    duration_minutes: int | None
    summary: str
    description: str = field(repr=False)
    location: str | None = field(repr=False)
    organizer_email: str = field(repr=False)
    organizer_name: str
    attendee_email: str = field(repr=False)
    attendee_name: str
    uid_domain: str = "telemed.invalid"

    def __post_init__(self) -> None:
        if self.version < 1:
            raise InvalidMessage("version: must be >= 1 (it is the SEQUENCE)")
        if self.method is Method.REQUEST and (self.start is None or not self.duration_minutes):
            raise InvalidMessage("start: a REQUEST needs a start time and a duration")
        if self.start is not None and self.start.utcoffset() is None:
            raise InvalidMessage("start: must be timezone-aware")
        for name in ("summary", "description", "location", "organizer_name", "attendee_name"):
            value = getattr(self, name)
            if value and looks_like_host_link(value):
                raise InvalidMessage(f"{name}: a host (start) link never goes into a calendar entry")

    @property
    def uid(self) -> str:
        return uid_for(self.appointment_id, self.uid_domain)


def uid_for(appointment_id: str, domain: str) -> str:
    return f"telemed-{appointment_id}@{domain}"


def build_ics(invitation: Invitation, *, now: datetime | None = None) -> bytes:
    return to_ical(build_calendar(invitation, now=now))


def build_calendar(invitation: Invitation, *, now: datetime | None = None) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", invitation.method.value)

    event = Event()
    event.add("uid", invitation.uid)
    event.add("sequence", invitation.version)
    event.add("dtstamp", (now or datetime.now(UTC)).astimezone(UTC))
    if invitation.start is not None:
        start = invitation.start.astimezone(UTC)
        event.add("dtstart", start)
        if invitation.duration_minutes:
            event.add("dtend", start + timedelta(minutes=invitation.duration_minutes))
    event.add("summary", invitation.summary)
    event.add("description", invitation.description)
    if invitation.location:
        event.add("location", invitation.location)
    cancelled = invitation.method is Method.CANCEL
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")

    organizer = vCalAddress(f"mailto:{invitation.organizer_email}")
    organizer.params["cn"] = vText(invitation.organizer_name)
    event.add("organizer", organizer)
    attendee = vCalAddress(f"mailto:{invitation.attendee_email}")
    attendee.params["cn"] = vText(invitation.attendee_name)
    attendee.params["role"] = vText("REQ-PARTICIPANT")
    attendee.params["partstat"] = vText("NEEDS-ACTION")
    # No replies: the organizer address is a no-reply sender.
    attendee.params["rsvp"] = vText("FALSE")
    event.add("attendee", attendee)
    calendar.add_component(event)
    return calendar


def to_ical(calendar: Calendar) -> bytes:
    """``calendar.to_ical()``, byte for byte, minus most of its cost.

    icalendar folds every content line character by character, short ones included (the
    hot spot of ``build_ics``). A line shorter than the fold limit comes out unchanged, so
    only the long ones (description, attendee) are handed to icalendar's folding.
    """
    lines = []
    for line in calendar.content_lines():
        if not line:
            continue
        data = line.encode("utf-8")
        lines.append(data if len(data) < _FOLD_LIMIT else line.to_ical())
    return b"\r\n".join(lines) + b"\r\n"


def unfold(ics_text: str) -> str:
    """Undo RFC 5545 line folding, so a scan sees every value whole."""
    return ics_text.replace("\r\n ", "").replace("\r\n\t", "").replace("\n ", "")


def attach(message: Message, ics: bytes, method: Method) -> None:
    """Attach the way common mail clients expect (as Google Calendar sends it).

    A ``text/calendar; method=...`` alternative lets the client show accept/update/cancel
    controls; an ``invite.ics`` file is there for anyone who imports it by hand. The
    rendered ``multipart/alternative`` becomes the first part of a ``multipart/mixed``
    (its Content-* headers move down with it, the others stay at the top), as
    ``EmailMessage.add_attachment`` did.
    """
    text = ics.decode("utf-8")
    if looks_like_host_link(unfold(text)):
        raise InvalidMessage("a calendar entry must not carry a host link")
    alternatives = message.get_payload()
    if message.get_content_type() != "multipart/alternative" or not isinstance(alternatives, list):
        raise ValueError("attach: expects a rendered multipart/alternative message")
    calendar_part = mime.leaf(
        [
            ("Content-Transfer-Encoding", "base64"),
            ("Content-Type", f'text/calendar; charset="utf-8"; method="{method.value}"'),
            ("MIME-Version", "1.0"),
        ],
        # The entry's own CRLF line ends (RFC 5545), kept by base64 on any transport.
        mime.base64_body(ics),
    )
    file_part = mime.leaf(
        [
            ("Content-Type", "application/ics"),
            ("Content-Transfer-Encoding", "base64"),
            ("Content-Disposition", f'attachment; filename="{FILENAME}"'),
            ("MIME-Version", "1.0"),
        ],
        mime.base64_body(ics),  # the file exactly as built, CRLF line ends
    )
    content_headers = [(k, v) for k, v in message.items() if k.lower().startswith("content-")]
    alternative = mime.multipart(content_headers, [*alternatives, calendar_part])
    for name in {k.lower() for k, _ in content_headers}:
        del message[name]
    message["Content-Type"] = mime.multipart_type("mixed")
    message.set_payload([alternative, file_part])
