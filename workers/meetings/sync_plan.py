"""What ``sync_meeting`` reads from the store before it calls Zoom, and what it answers.

The plan is read in one short transaction, so Zoom is called outside any database
transaction; ``plan_sync`` (``workers.policy.decisions``) decides the action from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from telemed.foundation.tenancy import clinic_of
from telemed.store import appointments
from telemed.workers.context import WorkerContext
from telemed.workers.hosting.hosts import HostChoice, host_choice_from
from telemed.workers.meetings.registration import Patient
from telemed.workers.policy.decisions import RegistrationStep, SyncAction, plan_sync, registration_step


@dataclass
class SyncOutcome:
    action: SyncAction
    notifications: list[int] = field(default_factory=list)
    resync: bool = False


@dataclass(frozen=True)
class SyncPlan:
    """What was read, so Zoom is called outside any database transaction."""

    action: SyncAction
    version: int
    start_time: datetime | None
    duration_minutes: int | None
    timezone: str
    host: str  # the live meeting's host ("me" or a Zoom user); "" when there is none
    clinic_name: str | None
    zoom_meeting_id: int | None
    doctor_id: str = ""
    new_host: HostChoice | None = None  # who would host a new meeting (read with the rest)
    patient: Patient | None = None
    registration: RegistrationStep = RegistrationStep.NONE  # what the live meeting's registrant needs
    registrant_id: str | None = None  # the live meeting's current registrant
    meeting_doctor_id: str = ""  # whom the live meeting was made for (reaches it with their token)


def read_plan(ctx: WorkerContext, appointment_id: str) -> SyncPlan | None:
    with ctx.database.session() as session:
        view = appointments.sync_view(session, appointment_id)
    if view is None:
        return None
    appointment, meeting = view.appointment, view.meeting
    live = meeting is not None and meeting.deleted_at is None
    patient = Patient(appointment.patient_id, appointment.patient_name, appointment.patient_email)
    step = (registration_step(meeting.registration, meeting.registrant_key, patient.key)
            if live and meeting is not None else RegistrationStep.NONE)
    made_for = (meeting.doctor_id or appointment.doctor_id) if live and meeting is not None else appointment.doctor_id
    action = plan_sync(appointment, meeting, registration_due=step is not RegistrationStep.NONE,
                       reassigned=made_for != appointment.doctor_id)
    return SyncPlan(
        action=action, version=appointment.version, start_time=appointment.start_time,
        duration_minutes=appointment.duration_minutes, timezone=appointment.timezone,
        host=meeting.host if live and meeting else "",
        clinic_name=appointment.clinic_name,
        zoom_meeting_id=meeting.zoom_meeting_id if live and meeting else None,
        doctor_id=appointment.doctor_id,
        new_host=host_choice_from(ctx, view.token_status, view.doctor_connection, view.zoom_user,
                                  clinic_of(appointment_id)),
        patient=patient, registration=step,
        registrant_id=meeting.registrant_id if live and meeting else None, meeting_doctor_id=made_for,
    )
