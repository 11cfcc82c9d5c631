"""``process_zoom_webhook``: what a stored Zoom notification changes in the store.

- ``meeting.started`` / ``meeting.ended``: the appointment becomes ``in_progress`` /
  ``completed`` and, when the booking system has a webhook, it is told (an outbox row on
  channel ``webhook``, role ``booking``, kind ``started`` / ``ended``).
- ``meeting.deleted`` of a live meeting of a scheduled appointment (so not our own delete
  of a cancelled one): the meeting row is marked deleted, then per
  TELEMED_ZOOM_MEETING_DELETED_POLICY either sync re-provisions it (``reprovision``) or the
  appointment needs attention and the administrator is alerted (``attention``).
- ``app_deauthorized``: the doctor removed our app in Zoom; their tokens are deleted and
  their connection is ``needs_reconnect``, with an alert.

Each receipt came through one clinic's endpoint (signed with that clinic's Zoom secret) and
touches that clinic's meetings and doctors only; one naming another clinic's meeting is
ignored. Webhooks and alerts are the clinic's (its URL, its admins).

Each receipt is handled once: its status changes in the same transaction as the effects,
so a redelivered message finds it processed and does nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from sqlmodel import Session

from telemed.foundation.tenancy import clinic_of, external_id
from telemed.store import appointments, attention, operations, outbox, states, zoom_tokens
from telemed.store import notifications as alerts
from telemed.store.models import Appointment, utcnow
from telemed.workers.alerts import count_alert
from telemed.workers.clinic_profiles import webhook_target
from telemed.workers.context import WorkerContext
from telemed.workers.policy.retries import PermanentFailure
from telemed.zoom import webhooks

log = structlog.get_logger("telemed.workers.zoom_events")
BOOKING_ROLE = "booking"
WEBHOOK_CHANNEL = "webhook"


@dataclass
class FollowUp:
    """What the actor queues after the transaction committed (ids only)."""

    sync: list[str] = field(default_factory=list)
    notifications: list[int] = field(default_factory=list)
    outcome: str = "processed"


def handle_zoom_webhook(ctx: WorkerContext, receipt_id: int) -> FollowUp:
    with ctx.database.session() as session:
        receipt = operations.get_receipt(session, receipt_id)
        if receipt is None:
            raise PermanentFailure("no such zoom webhook receipt")
        if receipt.status != operations.RECEIPT_PENDING:
            return FollowUp(outcome="already handled")
        clinic_id, text = operations.read_receipt_payload(receipt.payload)
        structlog.contextvars.bind_contextvars(clinic_id=clinic_id)
        try:
            notification = webhooks.read_notification(json.loads(text))
        except (ValueError, webhooks.BadNotification) as exc:
            operations.finish_receipt(session, receipt, operations.RECEIPT_FAILED, str(exc))
            return FollowUp(outcome="failed")
        follow_up = _dispatch(ctx, session, notification, clinic_id)
        status = operations.RECEIPT_IGNORED if follow_up.outcome.startswith("ignored") else operations.RECEIPT_PROCESSED
        operations.finish_receipt(session, receipt, status, follow_up.outcome)
    log.info("zoom webhook handled", receipt_id=receipt_id, zoom_event=notification.event, outcome=follow_up.outcome)
    return follow_up


def _dispatch(ctx: WorkerContext, session: Session, notification: webhooks.Notification, clinic_id: str) -> FollowUp:
    if notification.event == webhooks.APP_DEAUTHORIZED:
        assert notification.zoom_user_id is not None
        return _deauthorized(session, notification.zoom_user_id, clinic_id)
    assert notification.zoom_meeting_id is not None
    meeting = operations.meeting_by_zoom_id(session, notification.zoom_meeting_id)
    if meeting is None or meeting.deleted_at is not None:
        return FollowUp(outcome="ignored: not a live meeting of ours")
    if clinic_of(meeting.appointment_id) != clinic_id:
        # Signed by one clinic's app, naming another clinic's meeting: never acted on.
        log.warning("zoom webhook names another clinic's meeting; ignored", zoom_meeting_id=meeting.zoom_meeting_id)
        return FollowUp(outcome="ignored: not a meeting of this clinic")
    appointment = appointments.get_appointment(session, meeting.appointment_id, for_update=True)
    assert appointment is not None
    if notification.event == webhooks.MEETING_DELETED:
        return _deleted(ctx, session, appointment, meeting)
    started = notification.event == webhooks.MEETING_STARTED
    return _started_or_ended(ctx, session, appointment, started)


def _started_or_ended(ctx: WorkerContext, session: Session, appointment: Appointment, started: bool) -> FollowUp:
    if appointment.desired != states.SCHEDULED:
        return FollowUp(outcome="ignored: appointment is cancelled")
    if started and appointment.state in {states.PROVISIONED, states.COMPLETED}:
        appointment.state = states.IN_PROGRESS  # a host may restart a meeting they ended
    elif not started and appointment.state in {states.PROVISIONED, states.IN_PROGRESS}:
        appointment.state = states.COMPLETED
    appointments.save(session, appointment)
    follow_up = FollowUp(outcome=appointment.state)
    if webhook_target(ctx.profile(clinic_of(appointment.id))) is not None:
        message = outbox.add_message(session, appointment_id=appointment.id, version=appointment.version,
                                     role=BOOKING_ROLE, kind="started" if started else "ended",
                                     channel=WEBHOOK_CHANNEL)
        if message is not None:
            session.flush()
            assert message.id is not None
            follow_up.notifications.append(message.id)
    return follow_up


def _deleted(ctx: WorkerContext, session: Session, appointment: Appointment, meeting: Any) -> FollowUp:
    if appointment.desired != states.SCHEDULED:
        return FollowUp(outcome="ignored: appointment is cancelled (our own delete)")
    meeting.deleted_at = utcnow()
    appointments.save(session, meeting)
    ends = meeting.start_time + timedelta(minutes=meeting.duration_minutes)
    if appointment.state == states.COMPLETED or ends <= utcnow():
        return FollowUp(outcome="meeting deleted after the appointment; nothing to redo")
    if ctx.settings.zoom_meeting_deleted_policy == "reprovision":
        appointment.state = states.PENDING
        appointment.attention_reason = None
        appointments.save(session, appointment)
        log.warning("meeting deleted in Zoom; re-provisioning", appointment_id=appointment.id,
                    zoom_meeting_id=meeting.zoom_meeting_id)
        return FollowUp(sync=[appointment.id], outcome="re-provisioning")
    attention.mark_needs_attention(session, appointment, "the Zoom meeting was deleted in Zoom, not by telemed")
    shown = external_id(appointment.id)
    _, outbox_id = alerts.queue_alert(
        session, "meeting_deleted", f"Zoom meeting of appointment {shown} was deleted in Zoom",
        f"The Zoom meeting {meeting.zoom_meeting_id} of appointment {shown} was deleted in Zoom, "
        "not by telemed. The appointment needs attention: re-create the meeting or contact the doctor.",
        appointment.id,
    )
    count_alert("meeting_deleted", clinic_of(appointment.id))
    log.error("meeting deleted in Zoom; appointment needs attention", appointment_id=appointment.id,
              zoom_meeting_id=meeting.zoom_meeting_id)
    return FollowUp(notifications=[outbox_id], outcome="needs attention")


def _deauthorized(session: Session, zoom_user_id: str, clinic_id: str) -> FollowUp:
    # Only the doctors of the clinic whose app was removed: the same Zoom user may have
    # connected through another clinic's app too, which still stands.
    doctor_ids = [d for d in _doctors_for_zoom_user(session, zoom_user_id) if clinic_of(d) == clinic_id]
    if not doctor_ids:
        return FollowUp(outcome="ignored: no doctor with that Zoom user")
    follow_up = FollowUp(outcome="tokens deleted; needs reconnect")
    for doctor_id in doctor_ids:
        zoom_tokens.delete_tokens(session, doctor_id)
        parked = zoom_tokens.park_pending_appointments(session, doctor_id, "the doctor removed the app in Zoom")
        doctor = appointments.get_doctor(session, doctor_id)
        if doctor is None:
            continue
        doctor.connection = states.NEEDS_RECONNECT
        appointments.save(session, doctor)
        shown = external_id(doctor_id)
        _, outbox_id = alerts.queue_alert(
            session, "zoom_deauthorized", f"Doctor {shown} removed the telemed app in Zoom",
            f"Doctor {shown} removed the telemed app from their Zoom account. Their tokens were deleted; "
            f"{len(parked)} pending appointment(s) wait for the reconnect (send a connect link from the admin page).",
            clinic_id=clinic_id,
        )
        follow_up.notifications.append(outbox_id)
        count_alert("zoom_deauthorized", clinic_id)
        log.error("doctor deauthorized the Zoom app; needs reconnect", doctor_id=doctor_id)
    return follow_up


# Zoom's notification names the Zoom user id. The token store may map it to doctors
# (``doctor_ids_for_zoom_user``, once it records the id at connect time); doctors whose
# configured Zoom user is that id (or email) match too.


def _doctors_for_zoom_user(session: Session, zoom_user_id: str) -> list[str]:
    find = getattr(zoom_tokens, "doctor_ids_for_zoom_user", None)
    found: list[str] = list(find(session, zoom_user_id)) if find is not None else []
    return sorted(set(found) | set(appointments.doctor_ids_with_zoom_user(session, zoom_user_id)))
