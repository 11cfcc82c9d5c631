"""The pipeline's decisions as plain functions: what an event means, what Zoom needs."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from store import states


@dataclass(frozen=True)
class EventDecision:
    apply: bool
    reason: str


def decide_event(current_version: int | None, event_version: int) -> EventDecision:
    """The highest version wins; an equal or older one is recorded and ignored.

    A cancellation is an ordinary version: a late booked/rescheduled event is older and
    so can never bring a cancelled appointment back.
    """
    if current_version is None:
        return EventDecision(True, "first event for this appointment")
    if event_version > current_version:
        return EventDecision(True, f"version {event_version} supersedes {current_version}")
    return EventDecision(False, f"stale: version {event_version} <= current {current_version}")


class SyncAction(enum.Enum):
    CREATE = "create"  # no meeting yet: open an intent, then create (or adopt)
    UPDATE = "update"  # meeting exists but its time differs
    DELETE = "delete"  # cancelled and a meeting still exists
    CONFIRM = "confirm"  # Zoom already matches; record the version as synced
    NOTHING = "nothing"


class AppointmentView(Protocol):
    version: int
    desired: str
    synced_version: int
    start_time: datetime | None
    duration_minutes: int | None
    timezone: str


class MeetingView(Protocol):
    start_time: datetime
    duration_minutes: int
    timezone: str
    deleted_at: datetime | None


def plan_sync(appointment: AppointmentView, meeting: MeetingView | None) -> SyncAction:
    """What makes Zoom match the newest desired state (level-triggered, idempotent)."""
    live = meeting is not None and meeting.deleted_at is None
    if appointment.desired == states.CANCELLED:
        if live:
            return SyncAction.DELETE
        return SyncAction.CONFIRM if appointment.synced_version < appointment.version else SyncAction.NOTHING
    if not live:
        return SyncAction.CREATE
    assert meeting is not None
    if meeting_differs(appointment, meeting):
        return SyncAction.UPDATE
    if appointment.synced_version < appointment.version:
        return SyncAction.CONFIRM
    return SyncAction.NOTHING


def meeting_differs(appointment: AppointmentView, meeting: MeetingView) -> bool:
    return (
        appointment.start_time != meeting.start_time
        or appointment.duration_minutes != meeting.duration_minutes
        or appointment.timezone != meeting.timezone
    )


NOTICE_FOR_ACTION = {
    SyncAction.CREATE: "invite",
    SyncAction.UPDATE: "updated",
    SyncAction.DELETE: "cancelled",
}
RECIPIENT_ROLES = ("patient", "doctor")
