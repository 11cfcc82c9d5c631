"""The pipeline's decisions as plain functions: what an event means, what Zoom needs."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from telemed.store import states


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
    REGISTER = "register"  # the meeting matches, but its patient is not (or no longer) its registrant
    REASSIGN = "reassign"  # another doctor now: delete the old doctor's meeting; the next pass creates anew
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


def plan_sync(
    appointment: AppointmentView, meeting: MeetingView | None, *, registration_due: bool = False,
    reassigned: bool = False,
) -> SyncAction:
    """What makes Zoom match the newest desired state (level-triggered, idempotent).

    ``registration_due``: :func:`registration_step` of the live meeting is not NONE. An
    UPDATE or CREATE sees to the registrant itself; otherwise it is a REGISTER of its own.
    ``reassigned``: the live meeting was made for another doctor than the appointment's.
    """
    live = meeting is not None and meeting.deleted_at is None
    if appointment.desired == states.CANCELLED:
        if live:
            return SyncAction.DELETE
        return SyncAction.CONFIRM if appointment.synced_version < appointment.version else SyncAction.NOTHING
    if not live:
        return SyncAction.CREATE
    assert meeting is not None
    if reassigned:
        return SyncAction.REASSIGN
    if meeting_differs(appointment, meeting):
        return SyncAction.UPDATE
    if registration_due:
        return SyncAction.REGISTER
    if appointment.synced_version < appointment.version:
        return SyncAction.CONFIRM
    return SyncAction.NOTHING


def meeting_differs(appointment: AppointmentView, meeting: MeetingView) -> bool:
    return (
        appointment.start_time != meeting.start_time
        or appointment.duration_minutes != meeting.duration_minutes
        or appointment.timezone != meeting.timezone
    )


class RegistrationStep(enum.Enum):
    NONE = "none"  # nothing to do: registered for this patient, or registration not used
    REGISTER = "register"  # registration is on and the patient is not registered yet
    REPLACE = "replace"  # another patient (or name/address) is registered: cancel it, register anew


def registration_step(registration: str, registrant_key: str | None, patient_key: str) -> RegistrationStep:
    """What the meeting's registrant needs so that exactly the current patient holds a
    personal link (level-triggered: derived from the recorded state only).

    A meeting made without registration ("off") or for a host that cannot use it
    ("fallback") keeps the passcode link; turning registration on takes effect for
    meetings created afterwards.
    """
    if registration == states.REGISTRATION_OPEN:
        return RegistrationStep.REGISTER
    if registration == states.REGISTRATION_REGISTERED and registrant_key != patient_key:
        return RegistrationStep.REPLACE
    return RegistrationStep.NONE


NOTICE_FOR_ACTION = {
    SyncAction.CREATE: "invite",
    SyncAction.UPDATE: "updated",
    SyncAction.DELETE: "cancelled",
    SyncAction.REGISTER: "updated",  # the patient's link changed
}
RECIPIENT_ROLES = ("patient", "doctor")


# --- one story per inbox ----------------------------------------------------------------


class Send(enum.Enum):
    SEND = "send"
    SUPERSEDE = "supersede"  # a newer notice reached (or is reaching) this recipient
    WAIT = "wait"  # an older notice to this recipient is being sent right now: go after it


@dataclass(frozen=True)
class RecipientMail:
    """One outbox mail row of a recipient (an appointment's patient or doctor)."""

    outbox_id: int
    version: int
    kind: str
    status: str
    in_flight: bool = False  # claimed by a worker that is still alive

    @property
    def order(self) -> tuple[int, int]:
        # Rows of one version are made in story order (an invite, then the "updated" of a
        # re-made meeting, then reminders), so the row id breaks a version tie.
        return (self.version, self.outbox_id)


@dataclass(frozen=True)
class SendDecision:
    action: Send
    kind: str  # what this mail must be: its row's kind, or "invite" for a recipient never told
    reason: str


def decide_send(row: RecipientMail, others: list[RecipientMail]) -> SendDecision:
    """Whether one recipient's mail may go out now, and as what, so that each inbox tells
    one story: versions never go backwards, the first mail is an invitation carrying the
    newest details, the last one shows the current time and link (or the cancellation).

    ``others`` are the recipient's other mail rows, read under the lock that the caller
    then claims ``row`` under (``store.outbox.recipient_mails_locked``).
    """
    others = [o for o in others if o.outbox_id != row.outbox_id]
    newer = [o for o in others if o.order > row.order and (o.status == states.OUTBOX_SENT or o.in_flight)]
    if newer:
        latest = max(newer, key=lambda o: o.order)
        verb = "was sent" if latest.status == states.OUTBOX_SENT else "is being sent"
        return SendDecision(Send.SUPERSEDE, row.kind,
                            f"a newer notice to this recipient (v{latest.version} {latest.kind}) {verb}")
    if any(o.in_flight for o in others):
        return SendDecision(Send.WAIT, row.kind, "an older notice to this recipient is being sent")
    told = any(o.status == states.OUTBOX_SENT for o in others)
    if told:
        return SendDecision(Send.SEND, row.kind, "recipient already invited")
    if row.kind == "cancelled":
        return SendDecision(Send.SUPERSEDE, row.kind,
                            "the recipient was never invited, so there is nothing to call off")
    return SendDecision(Send.SEND, "invite", "first mail to this recipient: the invitation")
