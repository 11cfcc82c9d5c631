"""Recording what a sync did: Zoom's new state, the version it reflects and the notices
owed, in one transaction; or, when a person must act, the appointment's ``needs_attention``.
"""

from __future__ import annotations

import structlog

from telemed.foundation.tenancy import clinic_of
from telemed.store import appointments, attention, intents, outbox, states
from telemed.store.models import Meeting, utcnow
from telemed.workers import alerts
from telemed.workers.clinic_profiles import webhook_target
from telemed.workers.context import WorkerContext
from telemed.workers.delivery.webhook import owe_webhooks
from telemed.workers.meetings import registration
from telemed.workers.meetings.registration import PatientJoin
from telemed.workers.meetings.sync_plan import SyncOutcome, SyncPlan
from telemed.workers.policy.decisions import NOTICE_FOR_ACTION, RECIPIENT_ROLES

log = structlog.get_logger("telemed.workers")


def apply_join(meeting: Meeting, join: PatientJoin) -> None:
    meeting.registration = join.registration
    meeting.registrant_id, meeting.registrant_join_url, meeting.registrant_key = join.registrant_id, join.join_url, join.key


def record_sync(
    ctx: WorkerContext, appointment_id: str, plan: SyncPlan, *,
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
                apply_join(meeting, join)
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
        # The booking system's signed callbacks (the clinic's webhook), owed with the mails.
        target = webhook_target(ctx.profile(clinic_of(appointment_id)))
        notifications += owe_webhooks(session, target.url if target else None, notifications)
        outcome = SyncOutcome(plan.action, [m for m in notifications], resync=not caught_up)
    if alert_id is not None:
        alerts.deliver_soon(ctx, alert_id)
    log.info("sync recorded", appointment_id=appointment_id, version=plan.version,
             outcome=plan.action.value, count=len(outcome.notifications))
    return outcome


def _owed_notifications(session, appointment_id: str, plan: SyncPlan) -> list[int]:  # type: ignore[no-untyped-def]
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


def needs_attention(ctx: WorkerContext, appointment_id: str, reason: str) -> None:
    with ctx.database.session() as session:
        appointment = appointments.get_appointment(session, appointment_id, for_update=True)
        if appointment is not None:
            attention.mark_needs_attention(session, appointment, reason)
    log.error("appointment needs attention", appointment_id=appointment_id, reason=reason)
