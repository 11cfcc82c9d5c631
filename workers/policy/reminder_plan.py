"""Which reminders are due: plain functions, so the rules are tested without a clock.

A reminder at offset ``o`` belongs to the moment ``start - o``. It is sent once, when that
moment has passed and the appointment has not started, and only if the person was told
about this version of the appointment *before* that moment: someone who booked (or was
moved) 20 hours ahead just got an invitation, so a "24 hours before" reminder would only
repeat it. When several reminders are due at once (the scheduler was down), only the one
closest to the start goes; the others are skipped.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from datetime import datetime, timedelta

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_OFFSET = re.compile(r"^(\d+)([smhd])$")
# Zoom's start_url lives about two hours: without signed start links the doctor needs a
# mail shortly before the start that carries a fresh one.
FRESH_START_OFFSET = 15 * 60
START_URL_LIFETIME = 2 * 3600
REMINDER_PREFIX = "reminder"


class Decision(enum.StrEnum):
    WAIT = "wait"
    SEND = "send"
    SKIP = "skip"


def parse_offsets(text: str) -> list[int]:
    """``"24h,15m"`` → ``[86400, 900]`` (seconds, largest first, no repeats)."""
    seen: set[int] = set()
    for raw in text.split(","):
        item = raw.strip().lower()
        if not item:
            continue
        match = _OFFSET.match(item)
        if match is None:
            raise ValueError(f"TELEMED_REMINDER_OFFSETS: {item!r} is not like 24h, 15m, 90s or 2d")
        seconds = int(match.group(1)) * UNITS[match.group(2)]
        if seconds <= 0:
            raise ValueError(f"TELEMED_REMINDER_OFFSETS: {item!r} must be more than zero")
        seen.add(seconds)
    return sorted(seen, reverse=True)


def offset_label(seconds: int) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def reminder_kind(offset_seconds: int) -> str:
    """The outbox kind, unique per offset: ``reminder-24h``, ``reminder-15m``."""
    return f"{REMINDER_PREFIX}-{offset_label(offset_seconds)}"


def is_reminder(kind: str) -> bool:
    return kind == REMINDER_PREFIX or kind.startswith(REMINDER_PREFIX + "-")


def base_kind(kind: str) -> str:
    """The template kind: every reminder offset renders with the reminder templates."""
    return REMINDER_PREFIX if is_reminder(kind) else kind


def offsets_for(role: str, offsets: Iterable[int], signed_start_links: bool) -> list[int]:
    """A doctor without signed start links always gets a reminder with a fresh start_url."""
    chosen = set(offsets)
    if role == "doctor" and not signed_start_links and not any(o < START_URL_LIFETIME for o in chosen):
        chosen.add(FRESH_START_OFFSET)
    return sorted(chosen, reverse=True)


def plan(now: datetime, start: datetime, offsets: Iterable[int], told_at: datetime) -> dict[int, Decision]:
    """The decision for each offset of one recipient of one appointment version."""
    decisions: dict[int, Decision] = {}
    due: list[int] = []
    for offset in offsets:
        moment = start - timedelta(seconds=offset)
        if now >= start or told_at >= moment:
            decisions[offset] = Decision.SKIP
        elif now < moment:
            decisions[offset] = Decision.WAIT
        else:
            due.append(offset)
    for offset in due:
        decisions[offset] = Decision.SEND if offset == min(due) else Decision.SKIP
    return decisions
