"""``sync_meeting``: make Zoom match the appointment's newest desired state.

Level-triggered: it reads the current state and does whatever is missing (create,
update, delete or nothing), so running it twice, late or concurrently is harmless.
A create is preceded by a committed intent; a retry that finds the intent still open
first looks for the meeting the earlier attempt may have made (by its marker).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import dramatiq
import structlog

from store import appointments, intents, outbox, states
from store.models import Appointment, Meeting, utcnow
from workers.context import WorkerContext
from workers.decisions import NOTICE_FOR_ACTION, RECIPIENT_ROLES, SyncAction, plan_sync
from workers.retry_policy import PermanentFailure
from zoom import policy
from zoom.errors import ZoomNotFound, ZoomPermanentError

log = structlog.get_logger("telemed.workers")
LOCK_TTL_S = 120
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
    host: str
    clinic_name: str | None
    zoom_meeting_id: int | None


def sync_meeting(ctx: WorkerContext, appointment_id: str) -> SyncOutcome:
    lock = ctx.redis.lock(
        f"{ctx.settings.redis_namespace}:lock:sync:{appointment_id}", timeout=LOCK_TTL_S,
        blocking_timeout=LOCK_WAIT_S,
    )
    if not lock.acquire():
        raise dramatiq.Retry("another worker is syncing this appointment", delay=2_000)
    try:
        return _sync_locked(ctx, appointment_id)
    finally:
        try:
            lock.release()
        except Exception:  # expired or Redis blinked: the TTL frees it anyway
            pass


def _read_plan(ctx: WorkerContext, appointment_id: str) -> _Plan | None:
    with ctx.database.session() as session:
        appointment = appointments.get_appointment(session, appointment_id)
        if appointment is None:
            return None
        meeting = appointments.get_meeting(session, appointment_id)
        doctor = appointments.get_doctor(session, appointment.doctor_id)
        action = plan_sync(appointment, meeting)
        live = meeting is not None and meeting.deleted_at is None
        return _Plan(
            action=action, version=appointment.version, start_time=appointment.start_time,
            duration_minutes=appointment.duration_minutes, timezone=appointment.timezone,
            host=meeting.host if live and meeting else (doctor.zoom_user if doctor else ""),
            clinic_name=appointment.clinic_name,
            zoom_meeting_id=meeting.zoom_meeting_id if live and meeting else None,
        )


def _sync_locked(ctx: WorkerContext, appointment_id: str) -> SyncOutcome:
    plan = _read_plan(ctx, appointment_id)
    if plan is None:
        raise PermanentFailure("no such appointment")
    log.info("sync planned", appointment_id=appointment_id, version=plan.version, outcome=plan.action.value)
    try:
        if plan.action is SyncAction.CREATE:
            return _create(ctx, appointment_id, plan)
        if plan.action is SyncAction.UPDATE:
            return _update(ctx, appointment_id, plan)
        if plan.action is SyncAction.DELETE:
            return _delete(ctx, appointment_id, plan)
        if plan.action is SyncAction.CONFIRM:
            return _finish(ctx, appointment_id, plan, meeting_change=None)
    except ZoomPermanentError as exc:
        _needs_attention(ctx, appointment_id, f"Zoom refused the {plan.action.value}: {exc}")
        raise PermanentFailure(f"Zoom refused the {plan.action.value}: {type(exc).__name__}") from None
    return SyncOutcome(SyncAction.NOTHING)


def _create(ctx: WorkerContext, appointment_id: str, plan: _Plan) -> SyncOutcome:
    assert plan.start_time is not None and plan.duration_minutes is not None
    marker = policy.make_marker(appointment_id)
    with ctx.database.session() as session:
        intent, fresh = intents.begin_intent(session, appointment_id=appointment_id, marker=marker, host=plan.host)
    zoom = ctx.zoom
    created: dict | None = None
    if not fresh:
        found = policy.find_marked(zoom.list_meetings(plan.host), marker)
        if found is not None:
            created = zoom.get_meeting(int(found["id"]))
            log.warning("adopted meeting from an earlier attempt", appointment_id=appointment_id,
                        zoom_meeting_id=created["id"])
    requested = policy.build_meeting_request(
        topic=f"{plan.clinic_name or 'Telemed'} video appointment",
        start_time=plan.start_time, duration_minutes=plan.duration_minutes, timezone=plan.timezone,
        passcode=policy.generate_passcode(), marker=marker,
        meeting_authentication=ctx.settings.zoom_meeting_authentication,
    )
    if created is None:
        created = zoom.create_meeting(plan.host, requested)
    mismatches = policy.check_settings(requested, created)
    if mismatches:
        log.error("meeting settings differ from policy", appointment_id=appointment_id,
                  zoom_meeting_id=created["id"], mismatches=mismatches)
    meeting = Meeting(
        appointment_id=appointment_id, zoom_meeting_id=int(created["id"]), host=plan.host,
        join_url=created["join_url"], passcode=created.get("password") or "",
        start_time=plan.start_time, duration_minutes=plan.duration_minutes, timezone=plan.timezone,
        synced_version=plan.version,
    )
    if not fresh and created.get("start_time"):
        # An adopted meeting may carry an older schedule: record what Zoom has, so the
        # next pass sees the difference and updates it.
        meeting.start_time = datetime.fromisoformat(created["start_time"].replace("Z", "+00:00"))
        meeting.duration_minutes = int(created.get("duration", plan.duration_minutes))
    return _finish(ctx, appointment_id, plan, meeting_change=meeting, intent_id=intent.id)


def _update(ctx: WorkerContext, appointment_id: str, plan: _Plan) -> SyncOutcome:
    assert plan.zoom_meeting_id is not None and plan.start_time is not None and plan.duration_minutes
    try:
        ctx.zoom.update_meeting(
            plan.zoom_meeting_id,
            policy.build_update_request(plan.start_time, plan.duration_minutes, plan.timezone),
        )
    except ZoomNotFound:
        # Someone deleted it in Zoom: forget it, and the next pass creates a new one.
        _forget_meeting(ctx, appointment_id)
        return SyncOutcome(SyncAction.UPDATE, resync=True)
    return _finish(ctx, appointment_id, plan, meeting_change="updated")


def _delete(ctx: WorkerContext, appointment_id: str, plan: _Plan) -> SyncOutcome:
    assert plan.zoom_meeting_id is not None
    existed = ctx.zoom.delete_meeting(plan.zoom_meeting_id)
    if not existed:
        log.info("meeting was already gone", appointment_id=appointment_id, zoom_meeting_id=plan.zoom_meeting_id)
    return _finish(ctx, appointment_id, plan, meeting_change="deleted")


def _forget_meeting(ctx: WorkerContext, appointment_id: str) -> None:
    with ctx.database.session() as session:
        meeting = appointments.get_meeting(session, appointment_id)
        if meeting is not None:
            meeting.deleted_at = utcnow()
            appointments.save(session, meeting)


def _finish(
    ctx: WorkerContext, appointment_id: str, plan: _Plan, *,
    meeting_change: Meeting | str | None, intent_id: int | None = None,
) -> SyncOutcome:
    """Record Zoom's new state, the version it reflects and the notices owed, atomically."""
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
        elif meeting_change in {"updated", "deleted"}:
            meeting = appointments.get_meeting(session, appointment_id)
            assert meeting is not None
            if meeting_change == "updated":
                assert plan.start_time is not None and plan.duration_minutes is not None
                meeting.start_time, meeting.duration_minutes = plan.start_time, plan.duration_minutes
                meeting.timezone = plan.timezone
            else:
                meeting.deleted_at = utcnow()
            meeting.synced_version = plan.version
            appointments.save(session, meeting)

        appointment.synced_version = max(appointment.synced_version, plan.version)
        caught_up = appointment.synced_version >= appointment.version
        if caught_up:
            appointment.state = states.CLOSED if appointment.desired == states.CANCELLED else states.PROVISIONED
        appointments.save(session, appointment)

        notifications = _owed_notifications(session, appointment_id, plan)
        outcome = SyncOutcome(plan.action, [m for m in notifications], resync=not caught_up)
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
        if message is not None:
            session.flush()
            assert message.id is not None
            ids.append(message.id)
    return ids


def _needs_attention(ctx: WorkerContext, appointment_id: str, reason: str) -> None:
    with ctx.database.session() as session:
        appointment = appointments.get_appointment(session, appointment_id, for_update=True)
        if appointment is not None:
            appointment.state = states.NEEDS_ATTENTION
            appointment.attention_reason = reason[:300]
            appointments.save(session, appointment)
    log.error("appointment needs attention", appointment_id=appointment_id, reason=reason)
