"""Human-readable appointment times, in the appointment's own zone, translatable.

Names of days and months come from our own tables passed through ``gettext`` rather than
``strftime``, which would depend on the worker process's C locale.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from telemed.workers.notifier.messages import MeetingTime


def N_(message: str) -> str:
    """Marks a string for extraction; translated later, at format time."""
    return message


WEEKDAYS = (
    N_("Monday"),
    N_("Tuesday"),
    N_("Wednesday"),
    N_("Thursday"),
    N_("Friday"),
    N_("Saturday"),
    N_("Sunday"),
)
MONTHS = (
    N_("January"),
    N_("February"),
    N_("March"),
    N_("April"),
    N_("May"),
    N_("June"),
    N_("July"),
    N_("August"),
    N_("September"),
    N_("October"),
    N_("November"),
    N_("December"),
)

Gettext = Callable[[str], str]


def format_date(moment: datetime, gettext: Gettext) -> str:
    """``Thursday, 3 December 2026``."""
    return gettext("%(weekday)s, %(day)d %(month)s %(year)d") % {
        "weekday": gettext(WEEKDAYS[moment.weekday()]),
        "day": moment.day,
        "month": gettext(MONTHS[moment.month - 1]),
        "year": moment.year,
    }


def _clock(moment: datetime, with_abbreviation: bool) -> str:
    text = f"{moment:%H:%M}"
    return f"{text} {moment.tzname()}" if with_abbreviation else text


def format_span(time: MeetingTime, gettext: Gettext) -> str:
    """``Thursday, 3 December 2026, 09:30–10:00 (Europe/Berlin)``.

    When a DST change falls inside the meeting, both times carry the zone abbreviation
    (``02:30 CEST–02:30 CET``) so that a span that looks empty or too long is explained.
    A meeting that crosses midnight names the end date too.
    """
    start, end, zone_name = time.local()
    shifted = start.utcoffset() != end.utcoffset()
    start_text = _clock(start, shifted)
    end_text = _clock(end, shifted)
    if end.date() != start.date():
        end_text = f"{format_date(end, gettext)}, {end_text}"
    return gettext("%(date)s, %(start)s–%(end)s (%(zone)s)") % {
        "date": format_date(start, gettext),
        "start": start_text,
        "end": end_text,
        "zone": zone_name,
    }


def format_start(time: MeetingTime, gettext: Gettext) -> str:
    """Shorter form for subject lines: ``Thursday, 3 December 2026, 09:30 (Europe/Berlin)``."""
    start, _end, zone_name = time.local()
    return gettext("%(date)s, %(start)s (%(zone)s)") % {
        "date": format_date(start, gettext),
        "start": _clock(start, False),
        "zone": zone_name,
    }
