"""Everything a recipient could read in a mail: every part decoded (calendar files and
attachments too) with folded calendar lines joined, so a scan sees whole values."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage, Message

from icalendar import Calendar

from telemed.workers.notifier.calendar import unfold


def parsed(message: Message) -> EmailMessage:
    """A built mail as its recipient gets it: its bytes, parsed with the modern API (so a
    test can use get_content, get_body, iter_attachments and decoded headers)."""
    return email.message_from_bytes(message.as_bytes(), policy=email.policy.default)


def readable_parts(message: EmailMessage) -> list[tuple[str, str]]:
    """(content type, text) for every leaf part, subject and headers included."""
    parts = [("headers", "\n".join(f"{k}: {v}" for k, v in message.items()))]
    for part in message.walk():
        if part.is_multipart():
            continue
        content = part.get_content()
        text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)
        if "calendar" in part.get_content_type() or part.get_content_type() == "application/ics":
            text = unfold(text.replace("\r\n", "\n").replace("\n", "\r\n"))
        parts.append((part.get_content_type(), text))
    return parts


def calendars(message: EmailMessage) -> list[Calendar]:
    found = []
    for part in message.walk():
        if part.get_content_type() == "application/ics":
            found.append(Calendar.from_ical(part.get_content()))
    return found


def everything(message: EmailMessage) -> str:
    return "\n".join(text for _, text in readable_parts(message))


def calendar_parts(raw: bytes) -> list[bytes]:
    """The decoded bytes of every calendar in a mail as it travelled (the inline
    ``text/calendar`` part and the ``.ics`` file), from the raw bytes received."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    found = []
    for part in message.walk():
        if part.get_content_type() in {"text/calendar", "application/ics"}:
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found.append(payload)
    return found


def bare_line_feeds(data: bytes) -> int:
    """How many line ends in ``data`` are not CRLF (RFC 5545 wants CRLF only)."""
    return data.count(b"\n") - data.count(b"\r\n")
