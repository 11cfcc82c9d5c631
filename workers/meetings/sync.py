"""``sync_meeting``: make Zoom match the appointment's newest desired state.

Level-triggered: it reads the current state and does whatever is missing (create,
update, delete or nothing), so running it twice, late or concurrently is harmless.
A create is preceded by a committed intent; a retry that finds the intent still open
first looks for the meeting the earlier attempt may have made (by its marker).

Zoom side (``workers.hosting.hosts``, ``workers.meetings.zoom_guard``): a new meeting is hosted by the
doctor's own token (host ``me``) or the account app (host = zoom_user), an existing one
is reached the way it was made; every create/update counts against the host's daily cap
first; a meeting whose settings differ from policy raises an alert. A booking nobody can
host, a dead doctor grant, a cap that resets after the start, or a permanent refusal
parks the appointment in ``needs_attention`` with one admin alert.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime

import redis
import structlog
from redis.exceptions import LockError

from telemed.foundation.errors import RetryLater
from telemed.store import appointments, attention, intents, outbox, states
from telemed.store.models import Meeting, utcnow
from telemed.workers import alerts
from telemed.workers.context import WorkerContext
from telemed.workers.hosting.hosts import (
    HostChoice,
    NoZoomHost,
    client_for_meeting,
    host_choice_from,
    zoom_for_appointment,
)
from telemed.workers.leases import LEASE_TTL_S, renewed
from telemed.workers.meetings import registration, zoom_guard
from telemed.workers.meetings.registration import Patient, PatientJoin
from telemed.workers.metrics import MEETINGS
from telemed.workers.policy.decisions import (
    NOTICE_FOR_ACTION,
    RECIPIENT_ROLES,
    RegistrationStep,
    SyncAction,
    plan_sync,
    registration_step,
)
from telemed.workers.policy.retries import PermanentFailure
from telemed.zoom import policy
from telemed.zoom.client import ZoomClient
from telemed.zoom.errors import (
    ZoomAuthError,
    ZoomError,
    ZoomGrantRevoked,
    ZoomNotFound,
    ZoomPermanentError,
    ZoomRateLimited,
)

log = structlog.get_logger("telemed.workers")
LOCK_TTL_S = LEASE_TTL_S  # renewed while held (workers.leases): a killed holder's lock frees soon
LOCK_WAIT_S = 10


@dataclass
class SyncOutcome:
    action: SyncAction
    notifications: list[int] = field(default_factory=list)
    resync: bool = False


@dataclass(frozen=True)
class _Plan:
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


def sync_meeting(ctx: WorkerContext, appointment_id: str) -> SyncOutcome:
    lock = ctx.redis.lock(
        f"{ctx.settings.redis_namespace}:lock:sync:{appointment_id}", timeout=LOCK_TTL_S,
        blocking_timeout=LOCK_WAIT_S,
    )
    if not lock.acquire():
        raise RetryLater("another worker is syncing this appointment", delay_ms=2_000)
    try:
        with renewed(lock):
            return _sync_locked(ctx, appointment_id)
    finally:
        with contextlib.suppress(LockError, redis.RedisError):  # expired or flushed: the TTL frees it
            lock.release()


def _read_plan(ctx: WorkerContext, appointment_id: str) -> _Plan | None:
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
    return _Plan(
        action=action, version=appointment.version, start_time=appointment.start_time,
        duration_minutes=appointment.duration_minutes, timezone=appointment.timezone,
        host=meeting.host if live and meeting else "",
        clinic_name=appointment.clinic_name,
        zoom_meeting_id=meeting.zoom_meeting_id if live and meeting else None,
        doctor_id=appointment.doctor_id,
        new_host=host_choice_from(ctx, view.token_status, view.doctor_connection, view.zoom_user),
        patient=patient, registration=step,
        registrant_id=meeting.registrant_id if live and meeting else None, meeting_doctor_id=made_for,
    )


def _sync_locked(ctx: WorkerContext, appointment_id: str) -> SyncOutcome:
    plan = _read_plan(ctx, appointment_id)
    if plan is None:
        raise PermanentFailure("no such appointment")
    log.info("sync planned", appointment_id=appointment_id, version=plan.version, outcome=plan.action.value)
    if plan.action in {SyncAction.CREATE, SyncAction.UPDATE} and zoom_guard.waiting_for_reset(ctx, appointment_id):
        log.info("waiting for the host's daily Zoom quota to reset", appointment_id=appointment_id)
        return SyncOutcome(SyncAction.NOTHING)
    try:
        if plan.action is not SyncAction.CREATE and plan.action is not SyncAction.UPDATE:
            from telemed.workers.meetings.cancelled_intents import settle_cancelled_intent

            settle_cancelled_intent(ctx, appointment_id)  # a cancel after an ambiguous create
        if plan.action is SyncAction.CREATE:
            return _create(ctx, appointment_id, plan)
        if plan.action is SyncAction.UPDATE:
            return _update(ctx, appointment_id, plan)
        if plan.action is SyncAction.REGISTER:
            return _register(ctx, appointment_id, plan)
        if plan.action is SyncAction.REASSIGN:
            return _reassign(ctx, appointment_id, plan)
        if plan.action is SyncAction.DELETE:
            return _delete(ctx, appointment_id, plan)
        if plan.action is SyncAction.CONFIRM:
            return _finish(ctx, appointment_id, plan, meeting_change=None)
    except NoZoomHost as exc:
        # The booking stands; a person must connect the doctor or configure the account app.
        zoom_guard.park(ctx, appointment_id, "no_zoom_host", f"no Zoom host: {exc.reason}",
                        f"No Zoom host for appointment {appointment_id}",
                        f"Appointment {appointment_id} (doctor {plan.doctor_id}) was accepted but has no "
                        f"Zoom meeting: {exc.reason}. Connect the doctor's Zoom (telemed doctors connect-link "
                        f"{plan.doctor_id}) or configure the account app; the appointment is then synced again "
                        "with its next change, or by hand.")
    except ZoomGrantRevoked:
        # The token provider parked the doctor's pending work and alerted once; this one
        # too, whatever its state. Retrying cannot help until the doctor reconnects.
        _needs_attention(ctx, appointment_id, f"Zoom connection lost: doctor {plan.doctor_id} must reconnect")
    except ZoomRateLimited as exc:
        if not exc.daily:
            raise  # workers.policy.retries: Retry-After, or a short jittered pause
        if not zoom_guard.on_daily_limit(ctx, appointment_id, plan.doctor_id, plan.start_time, exc):
            zoom_guard.hold_until_reset(ctx, appointment_id, exc.retry_after)
            raise  # workers.policy.retries: at the reset (00:00 UTC or Zoom's Retry-After)
    except (ZoomPermanentError, ZoomAuthError) as exc:
        zoom_guard.park(ctx, appointment_id, "zoom_refused", f"Zoom refused the {plan.action.value}: {exc}",
                        f"Zoom refused the {plan.action.value} for appointment {appointment_id}",
                        f"Zoom answered the {plan.action.value} of appointment {appointment_id}'s meeting with "
                        f"an error that retrying cannot fix: {exc}. The message is in the dead letters "
                        "(telemed dlq list).")
        raise PermanentFailure(f"Zoom refused the {plan.action.value}: {type(exc).__name__}") from None
    return SyncOutcome(SyncAction.NOTHING)


def _create(ctx: WorkerContext, appointment_id: str, plan: _Plan) -> SyncOutcome:
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
    _apply_join(meeting, join)
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
    outcome = _finish(ctx, appointment_id, plan, meeting_change=meeting, intent_id=intent.id, join=join)
    if behind:
        log.warning("adopted meeting has an older schedule; updating it", appointment_id=appointment_id,
                    zoom_meeting_id=meeting.zoom_meeting_id)
        outcome.resync = True
    return outcome



def _update(ctx: WorkerContext, appointment_id: str, plan: _Plan) -> SyncOutcome:
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
    return _finish(ctx, appointment_id, plan, meeting_change="updated", join=join)


def _reassign(ctx: WorkerContext, appointment_id: str, plan: _Plan) -> SyncOutcome:
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


def _register(ctx: WorkerContext, appointment_id: str, plan: _Plan) -> SyncOutcome:
    """The meeting matches the schedule but not the patient: register them (replacing the
    registrant of a previous patient)."""
    zoom = client_for_meeting(ctx, plan.doctor_id, plan.host)
    join = _registrant_for(ctx, appointment_id, plan, zoom)
    if join is None:
        return SyncOutcome(SyncAction.REGISTER, resync=True)
    return _finish(ctx, appointment_id, plan, meeting_change="registered", join=join)


def _registrant_for(ctx: WorkerContext, appointment_id: str, plan: _Plan, zoom: ZoomClient) -> PatientJoin | None:
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


def _delete(ctx: WorkerContext, appointment_id: str, plan: _Plan) -> SyncOutcome:
    assert plan.zoom_meeting_id is not None
    existed = client_for_meeting(ctx, plan.meeting_doctor_id or plan.doctor_id, plan.host).delete_meeting(plan.zoom_meeting_id)
    if existed:
        MEETINGS.labels(action="deleted").inc()
    if not existed:
        log.info("meeting was already gone", appointment_id=appointment_id, zoom_meeting_id=plan.zoom_meeting_id)
    return _finish(ctx, appointment_id, plan, meeting_change="deleted")


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


def _apply_join(meeting: Meeting, join: PatientJoin) -> None:
    meeting.registration = join.registration
    meeting.registrant_id, meeting.registrant_join_url, meeting.registrant_key = join.registrant_id, join.join_url, join.key


def _finish(
    ctx: WorkerContext, appointment_id: str, plan: _Plan, *,
    meeting_change: Meeting | str | None, intent_id: int | None = None, join: PatientJoin | None = None,
) -> SyncOutcome:
    """Record Zoom's new state, the version it reflects and the notices owed, atomically."""
    alert_id: int | None = None
    with ctx.database.session() as session:
        appointment = appointments.get_appointment(session, appointment_id, for_update=True)
        assert appointment is not None
        if isinstance(meeting_change, Meeting):
            existing = appointments.get_meeting(session, appointment_id)
            if existing is not None:
                session.delete(existing)
                session.flush()
            session.add(meeting_change)
            intent = intents.open_intent(session, appointment_id)
            if intent is not None and (intent_id is None or intent.id == intent_id):
                intents.close_intent(session, intent)
        elif meeting_change in {"updated", "deleted", "registered"}:
            meeting = appointments.get_meeting(session, appointment_id)
            assert meeting is not None
            if join is not None:
                _apply_join(meeting, join)
            if meeting_change == "updated":
                assert plan.start_time is not None and plan.duration_minutes is not None
                meeting.start_time, meeting.duration_minutes = plan.start_time, plan.duration_minutes
                meeting.timezone = plan.timezone
            elif meeting_change == "deleted":
                meeting.deleted_at = utcnow()
            meeting.synced_version = plan.version
            appointments.save(session, meeting)

        if join is not None and join.fallback_reason:
            current = appointments.get_meeting(session, appointment_id)
            alert_id = registration.flag_fallback(
                ctx, session, host=current.host if current else plan.host, doctor_id=plan.doctor_id,
                appointment_id=appointment_id, reason=join.fallback_reason,
            )
        appointment.synced_version = max(appointment.synced_version, plan.version)
        caught_up = appointment.synced_version >= appointment.version
        if caught_up:
            appointment.state = states.CLOSED if appointment.desired == states.CANCELLED else states.PROVISIONED
        appointments.save(session, appointment)

        notifications = _owed_notifications(session, appointment_id, plan)
        # The booking system's signed callbacks (TELEMED_WEBHOOK_URL), owed with the mails.
        from telemed.workers.delivery.webhook import owe_webhooks

        notifications += owe_webhooks(session, ctx.settings.webhook_url, notifications)
        outcome = SyncOutcome(plan.action, [m for m in notifications], resync=not caught_up)
    if alert_id is not None:
        alerts.deliver_soon(ctx, alert_id)
    log.info("sync recorded", appointment_id=appointment_id, version=plan.version,
             outcome=plan.action.value, count=len(outcome.notifications))
    return outcome


def _owed_notifications(session, appointment_id: str, plan: _Plan) -> list[int]:  # type: ignore[no-untyped-def]
    kind = NOTICE_FOR_ACTION.get(plan.action)
    if kind is None:
        return []
    if kind == "cancelled" and not outbox.has_kind(session, appointment_id, "invite"):
        return []  # nobody was ever told about a meeting, so there is nothing to call off
    ids: list[int] = []
    for role in RECIPIENT_ROLES:
        message = outbox.add_message(session, appointment_id=appointment_id, version=plan.version, role=role, kind=kind)
        if message is None and kind == "invite":
            # A second create for one version replaces a meeting deleted in Zoom: the old
            # link is dead, so everyone gets the new one as an update.
            message = outbox.add_message(session, appointment_id=appointment_id, version=plan.version,
                                         role=role, kind="updated")
        if message is not None:
            session.flush()
            assert message.id is not None
            ids.append(message.id)
    return ids


def _needs_attention(ctx: WorkerContext, appointment_id: str, reason: str) -> None:
    with ctx.database.session() as session:
        appointment = appointments.get_appointment(session, appointment_id, for_update=True)
        if appointment is not None:
            attention.mark_needs_attention(session, appointment, reason)
    log.error("appointment needs attention", appointment_id=appointment_id, reason=reason)
