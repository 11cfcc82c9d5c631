"""A calendar invitation with sample values, to build calendar and mail tests on."""

from __future__ import annotations

from typing import Any

from telemed.workers.notifier.calendar import Invitation, Method
from tests.support.snapshots import JOIN, START


def invitation(**changes: Any) -> Invitation:
    values: dict[str, Any] = dict(
        appointment_id="A-1001", version=1, method=Method.REQUEST, start=START, duration_minutes=30,
        summary="Video appointment", description="Join: " + JOIN, location=JOIN,
        organizer_email="no-reply@clinic.example", organizer_name="Northside Clinic",
        attendee_email="grace@example.org", attendee_name="Grace Hopper", uid_domain="clinic.example",
    )
    values.update(changes)
    return Invitation(**values)
