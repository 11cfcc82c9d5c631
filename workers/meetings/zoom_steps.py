"""The Zoom steps of a sync: create, update, reassign, register the patient, delete.

Each step calls Zoom (outside any database transaction) for one planned action and hands
what Zoom now has to ``sync_record.record_sync``. A create is preceded by a committed
intent; a retry that finds the intent still open first looks for the meeting the earlier
attempt may have made (by its marker) and adopts it.
"""

from __future__ import annotations

import structlog

from telemed.store import appointments, intents, states
from telemed.store.models import Meeting, utcnow
from telemed.workers.context import WorkerContext
from telemed.workers.hosting.hosts import client_for_meeting, zoom_for_appointment
from telemed.workers.meetings import registration, zoom_guard
from telemed.workers.meetings.registration import PatientJoin
from telemed.workers.meetings.sync_plan import SyncOutcome, SyncPlan
from telemed.workers.meetings.sync_record import apply_join, record_sync
from telemed.workers.metrics import MEETINGS
from telemed.workers.policy.decisions import RegistrationStep, SyncAction
from telemed.zoom import policy
from telemed.zoom.client import ZoomClient
from telemed.zoom.errors import ZoomError, ZoomNotFound, ZoomRateLimited

log = structlog.get_logger("telemed.workers")


def create(ctx: WorkerContext, appointment_id: str, plan: SyncPlan) -> SyncOutcome:
    assert plan.start_time is not None and plan.duration_minutes is not None
    marker = policy.make_marker(appointment_id)
    zoom, host = zoom_for_appointment(ctx, plan.doctor_id, plan.new_host)
    with ctx.database.session() as session:
        intent, fresh = intents.begin_intent(session, appointment_id=appointment_id, marker=marker, host=host)
        earlier_host = intent.host
    created: dict | None = None
    if not fresh:
        # An earlier attempt may have created the meeting and died before recording it
        # (or its answer was lost): find it by its marker among the host's meetings.
        earlier = client_for_meeting(ctx, plan.doctor_id, earlier_host)
        found = policy.find_marked(earlier.list_meetings(earlier_host), marker)
        if found is not None:
            created = earlier.get_meeting(int(found["id"]))
            zoom, host = earlier, earlier_host
            MEETINGS.labels(action="adopted").inc()
            log.warning("adopted meeting from an earlier attempt", appointment_id=appointment_id,
                        zoom_meeting_id=created["id"])
    wants_registration = ctx.settings.patient_join == "registrant"
    requested = policy.build_meeting_request(
        topic=f"{plan.clinic_name or 'Telemed'} video appointment",
        start_time=plan.start_time, duration_minutes=plan.duration_minutes, timezone=plan.timezone,
        passcode=policy.generate_passcode(), marker=marker,
        meeting_authentication=ctx.settings.zoom_meeting_authentication,
        registration=wants_registration,
    )
    adopted = created is not None
    if created is None:
        try:
            zoom_guard.reserve_quota(ctx, plan.doctor_id, host)
            created = zoom.create_meeting(host, requested)
        except ZoomError as exc:
            zoom_guard.give_back_unsent(ctx, plan.doctor_id, host, exc)
            if isinstance(exc, ZoomRateLimited):
                zoom_guard.note_zoom_limit(ctx, plan.doctor_id, host, exc)
            if zoom_guard.definitely_not_created(exc):
                # Nothing can exist in Zoom: the retry need not search for it (which would
                # spend a list call against the same rate limit that just refused us).
                _abandon_intent(ctx, appointment_id, intent.id)
            raise
        MEETINGS.labels(action="created").inc()
    zoom_guard.check_policy(ctx, appointment_id, requested, created, adopted=adopted)
    # The patient is registered before anything is recorded or owed, so no invitation goes
    # out without their own link; a crash here leaves the intent open and the retry adopts
    # the meeting and then the registration (registration.register looks first).
    assert plan.patient is not None
    join = registration.for_new_meeting(zoom, created, plan.patient, asked=wants_registration, fresh=not adopted)
    meeting = Meeting(
        appointment_id=appointment_id, zoom_meeting_id=int(created["id"]), host=host,
        join_url=created["join_url"], passcode=created.get("password") or "",
        start_time=plan.start_time, duration_minutes=plan.duration_minutes, timezone=plan.timezone,
        synced_version=plan.version, doctor_id=plan.doctor_id,
    )
    apply_join(meeting, join)
    behind = False
    if not fresh and created.get("start_time"):
        # An adopted meeting may carry an older schedule (the attempt that created it was
        # for an earlier version): record what Zoom has, and ask for the next pass, which
        # sees the difference and updates it. Without that pass the appointment counted
        # as synced at this version while Zoom kept the old time (found by the chaos run).
        zoom_start = policy.parse_zoom_time(created["start_time"])
        if zoom_start is None:
            raise ValueError("Zoom answered a start_time that is not a time")
        meeting.start_time = zoom_start
        meeting.duration_minutes = int(created.get("duration", plan.duration_minutes))
        behind = zoom_start != policy.as_utc(plan.start_time) or meeting.duration_minutes != plan.duration_minutes
    outcome = record_sync(ctx, appointment_id, plan, meeting_change=meeting, intent_id=intent.id, join=join)
    if behind:
        log.warning("adopted meeting has an older schedule; updating it", appointment_id=appointment_id,
                    zoom_meeting_id=meeting.zoom_meeting_id)
        outcome.resync = True
    return outcome


def update(ctx: WorkerContext, appointment_id: str, plan: SyncPlan) -> SyncOutcome:
    assert plan.zoom_meeting_id is not None and plan.start_time is not None and plan.duration_minutes
    zoom = client_for_meeting(ctx, plan.doctor_id, plan.host)
    zoom_guard.reserve_quota(ctx, plan.doctor_id, plan.host)
    try:
        zoom.update_meeting(
            plan.zoom_meeting_id,
            policy.build_update_request(plan.start_time, plan.duration_minutes, plan.timezone),
        )
        MEETINGS.labels(action="updated").inc()
    except ZoomRateLimited as exc:
        zoom_guard.give_back_unsent(ctx, plan.doctor_id, plan.host, exc)
        zoom_guard.note_zoom_limit(ctx, plan.doctor_id, plan.host, exc)
        raise
    except ZoomNotFound:
        # Someone deleted it in Zoom: forget it, and the next pass creates a new one.
        _forget_meeting(ctx, appointment_id)
        return SyncOutcome(SyncAction.UPDATE, resync=True)
    # A reschedule keeps the registrant and its link; a patient changed in the same version
    # is re-registered here, so the "updated" notice carries the new patient's link.
    join = _registrant_for(ctx, appointment_id, plan, zoom) if plan.registration is not RegistrationStep.NONE else None
    if join is None and plan.registration is not RegistrationStep.NONE:
        return SyncOutcome(SyncAction.UPDATE, resync=True)
    return record_sync(ctx, appointment_id, plan, meeting_change="updated", join=join)


def reassign(ctx: WorkerContext, appointment_id: str, plan: SyncPlan) -> SyncOutcome:
    """Another doctor now: the old doctor's meeting (and the patient's registration in it)
    goes, and the next pass creates the new doctor's meeting, registers the patient again
    and owes everyone an invitation with the new links."""
    assert plan.zoom_meeting_id is not None
    if client_for_meeting(ctx, plan.meeting_doctor_id, plan.host).delete_meeting(plan.zoom_meeting_id):
        MEETINGS.labels(action="deleted").inc()
    log.info("appointment reassigned: the old doctor's meeting is gone", appointment_id=appointment_id,
             zoom_meeting_id=plan.zoom_meeting_id)
    _forget_meeting(ctx, appointment_id)
    return SyncOutcome(SyncAction.REASSIGN, resync=True)


def register(ctx: WorkerContext, appointment_id: str, plan: SyncPlan) -> SyncOutcome:
    """The meeting matches the schedule but not the patient: register them (replacing the
    registrant of a previous patient)."""
    zoom = client_for_meeting(ctx, plan.doctor_id, plan.host)
    join = _registrant_for(ctx, appointment_id, plan, zoom)
    if join is None:
        return SyncOutcome(SyncAction.REGISTER, resync=True)
    return record_sync(ctx, appointment_id, plan, meeting_change="registered", join=join)


def _registrant_for(ctx: WorkerContext, appointment_id: str, plan: SyncPlan, zoom: ZoomClient) -> PatientJoin | None:
    """Cancel a previous patient's registration, then register (or adopt) this one's;
    None when the meeting is gone from Zoom (forgotten: the next pass re-creates it)."""
    assert plan.zoom_meeting_id is not None and plan.patient is not None
    try:
        if plan.registration is RegistrationStep.REPLACE and plan.registrant_id:
            registration.cancel(zoom, plan.zoom_meeting_id, plan.registrant_id)
        # An earlier attempt may have registered this patient already: look first.
        return registration.register(zoom, plan.zoom_meeting_id, plan.patient, look_first=True)
    except ZoomNotFound:
        _forget_meeting(ctx, appointment_id)
        return None


def delete(ctx: WorkerContext, appointment_id: str, plan: SyncPlan) -> SyncOutcome:
    assert plan.zoom_meeting_id is not None
    existed = client_for_meeting(ctx, plan.meeting_doctor_id or plan.doctor_id, plan.host).delete_meeting(plan.zoom_meeting_id)
    if existed:
        MEETINGS.labels(action="deleted").inc()
    if not existed:
        log.info("meeting was already gone", appointment_id=appointment_id, zoom_meeting_id=plan.zoom_meeting_id)
    return record_sync(ctx, appointment_id, plan, meeting_change="deleted")


def _abandon_intent(ctx: WorkerContext, appointment_id: str, intent_id: int | None) -> None:
    with ctx.database.session() as session:
        intent = intents.open_intent(session, appointment_id)
        if intent is not None and intent.id == intent_id:
            intents.close_intent(session, intent, status=states.INTENT_ABANDONED)


def _forget_meeting(ctx: WorkerContext, appointment_id: str) -> None:
    with ctx.database.session() as session:
        meeting = appointments.get_meeting(session, appointment_id)
        if meeting is not None:
            meeting.deleted_at = utcnow()
            appointments.save(session, meeting)
