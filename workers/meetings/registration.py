"""The patient as the meeting's registrant: their own Zoom link, exactly once.

``sync_meeting`` calls these around its create, update and register steps. Exactly once
across crashes and retries: on a meeting this very attempt created nobody can be
registered yet, so the patient is added directly; anywhere else an earlier attempt may
have registered them and died before recording it, so the approved registrants are read
first and the patient's registration (by e-mail) adopted.

Whether a host can use registration is decided from Zoom's answers only: the meeting it
created (``approval_type`` back at 2: an account lock), or its 400 to the registrant
call (code 200 "Only available for Paid user" for a Basic host, 3000 when registration
is not enabled). Such an appointment keeps the meeting's passcode link ("fallback"), and
the host is flagged with one admin alert (``registration_fallback``), not one per booking.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlmodel import Session

from telemed.store import registrations, states
from telemed.workers import alerts
from telemed.workers.context import WorkerContext
from telemed.workers.metrics import MEETINGS
from telemed.zoom import policy
from telemed.zoom.client import ZoomClient
from telemed.zoom.errors import ZoomPermanentError

log = structlog.get_logger("telemed.workers")
FALLBACK_ALERT = "registration_fallback"


@dataclass(frozen=True)
class PatientJoin:
    """How the patient joins a meeting, as recorded on its row."""

    registration: str  # store.states.REGISTRATION_*
    registrant_id: str | None = None
    join_url: str | None = field(default=None, repr=False)
    key: str | None = field(default=None, repr=False)
    fallback_reason: str | None = None  # set when Zoom refused registration just now


@dataclass(frozen=True)
class Patient:
    id: str
    name: str = field(repr=False)
    email: str = field(repr=False)

    @property
    def key(self) -> str:
        return policy.registrant_key(self.id, self.name, self.email)


def for_new_meeting(
    zoom: ZoomClient, meeting: Mapping[str, Any], patient: Patient, *, asked: bool, fresh: bool,
) -> PatientJoin:
    """The patient's registration on a meeting just created (``fresh``) or adopted."""
    if not policy.registration_open(meeting):
        if asked:
            return PatientJoin(states.REGISTRATION_FALLBACK,
                               fallback_reason="Zoom created the meeting without registration (approval_type "
                                               f"{_approval(meeting)!r}): an account setting turns it off")
        return PatientJoin(states.REGISTRATION_OFF)
    return register(zoom, int(meeting["id"]), patient, look_first=not fresh)


def register(zoom: ZoomClient, meeting_id: int, patient: Patient, *, look_first: bool) -> PatientJoin:
    """Make ``patient`` the meeting's registrant (or adopt their registration)."""
    if look_first:
        email = patient.email.strip().lower()
        for registrant in zoom.list_registrants(meeting_id):
            if str(registrant.get("email", "")).strip().lower() == email and registrant.get("join_url"):
                MEETINGS.labels(action="registrant_adopted").inc()
                log.warning("adopted the patient's registration from an earlier attempt", zoom_meeting_id=meeting_id)
                return _registered(str(registrant["id"]), str(registrant["join_url"]), patient)
    try:
        added = zoom.add_registrant(meeting_id, **policy.build_registrant_request(patient.name, patient.email))
    except ZoomPermanentError as exc:
        if policy.registration_refused(exc.status, exc.code):
            return PatientJoin(states.REGISTRATION_FALLBACK,
                               fallback_reason=f"Zoom refused registration (HTTP {exc.status}, code {exc.code})")
        raise
    if not added.get("join_url") or not added.get("registrant_id"):
        # Only a manual-approval meeting answers without a link; ours approve automatically.
        return PatientJoin(states.REGISTRATION_FALLBACK,
                           fallback_reason="Zoom registered the patient without a join link (manual approval)")
    MEETINGS.labels(action="registrant_added").inc()
    return _registered(str(added["registrant_id"]), str(added["join_url"]), patient)


def cancel(zoom: ZoomClient, meeting_id: int, registrant_id: str) -> None:
    """Cancel a registration: its link stops working (the patient changed)."""
    zoom.cancel_registrants(meeting_id, [registrant_id])
    MEETINGS.labels(action="registrant_cancelled").inc()


def flag_fallback(
    ctx: WorkerContext, session: Session, *, host: str, doctor_id: str, appointment_id: str, reason: str,
) -> int | None:
    """Record a host that cannot use registration; the first time, an admin alert in the
    caller's transaction (its outbox id, to queue after commit), else None."""
    who = f"doctor:{doctor_id}" if host == "me" else host.lower()
    if not registrations.flag_fallback_host(session, who, reason):
        return None
    return alerts.raise_alert(
        ctx, FALLBACK_ALERT, f"Zoom host {who} cannot use meeting registration",
        f"Appointment {appointment_id} (doctor {doctor_id}) could not give the patient a personal Zoom link: "
        f"{reason}. Its patients get the meeting's passcode link instead (waiting room and passcode stay on). "
        "A licensed (Pro or higher) Zoom user with registration allowed in the account settings gets personal "
        "links again for meetings created afterwards. This alert is sent once per host.",
        appointment_id=appointment_id, session=session,
    )


def _registered(registrant_id: str, join_url: str, patient: Patient) -> PatientJoin:
    return PatientJoin(states.REGISTRATION_REGISTERED, registrant_id=registrant_id, join_url=join_url, key=patient.key)


def _approval(meeting: Mapping[str, Any]) -> Any:
    settings = meeting.get("settings")
    return settings.get("approval_type") if isinstance(settings, Mapping) else None
