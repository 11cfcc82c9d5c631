"""``deliver_notification``: render one outbox row from the store and send it.

The content is built at send time: the patient's notice from the stored meeting, the
doctor's with a start link fetched fresh from Zoom (it is never stored). The row is
marked sent after the mail server accepted the message; a crash in between can send a
mail twice, never zero times, and the stable Message-ID lets mail clients fold the copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

import structlog

from store import appointments, outbox, states
from workers.context import WorkerContext
from workers.notifier.messages import DoctorNotice, MeetingTime, NoticeKind, PatientNotice
from workers.notifier.render import render_doctor, render_patient
from workers.retry_policy import PermanentFailure

log = structlog.get_logger("telemed.workers")
MAIL_DOMAIN = "telemed.invalid"


@dataclass(frozen=True)
class _Snapshot:
    role: str
    kind: str
    version: int
    appointment_id: str
    desired: str
    patient_name: str
    patient_email: str
    doctor_name: str
    doctor_email: str
    clinic_name: str | None
    timezone: str
    start_time: datetime | None
    duration_minutes: int | None
    zoom_meeting_id: int | None
    join_url: str | None
    passcode: str | None


def deliver_notification(ctx: WorkerContext, outbox_id: int) -> str:
    snapshot = _read(ctx, outbox_id)
    if snapshot is None:
        return "done"
    superseded = _superseded_reason(snapshot)
    if superseded:
        with ctx.database.session() as session:
            message = outbox.get_message(session, outbox_id)
            if message is not None and message.status == states.OUTBOX_PENDING:
                outbox.mark_superseded(session, message, superseded)
        log.info("notification superseded", appointment_id=snapshot.appointment_id, outbox_id=outbox_id,
                 kind=snapshot.kind, role=snapshot.role, outcome="superseded")
        return "superseded"

    ctx.mail.send(_render(ctx, snapshot))
    with ctx.database.session() as session:
        message = outbox.get_message(session, outbox_id)
        if message is not None:
            outbox.mark_sent(session, message, ref=_message_id(snapshot))
    log.info("notification sent", appointment_id=snapshot.appointment_id, outbox_id=outbox_id,
             kind=snapshot.kind, role=snapshot.role, version=snapshot.version, outcome="sent")
    return "sent"


def give_up(ctx: WorkerContext, outbox_id: int, reason: str) -> None:
    """A notification that finally failed becomes a visible failure, not silence."""
    with ctx.database.session() as session:
        message = outbox.get_message(session, outbox_id)
        if message is None or message.status != states.OUTBOX_PENDING:
            return
        outbox.mark_attempt_failed(session, message, reason, final=True)
        appointment_id = message.appointment_id
    log.error("notification failed for good; admin alerted", outbox_id=outbox_id,
              appointment_id=appointment_id, reason=reason)


def _read(ctx: WorkerContext, outbox_id: int) -> _Snapshot | None:
    with ctx.database.session() as session:
        message = outbox.get_message(session, outbox_id)
        if message is None:
            raise PermanentFailure("no such outbox message")
        if message.status != states.OUTBOX_PENDING:
            return None
        appointment = appointments.get_appointment(session, message.appointment_id)
        if appointment is None:
            raise PermanentFailure("outbox message for an unknown appointment")
        doctor = appointments.get_doctor(session, appointment.doctor_id)
        meeting = appointments.get_meeting(session, appointment.id)
        live = meeting is not None and meeting.deleted_at is None
        return _Snapshot(
            role=message.role, kind=message.kind, version=message.version, appointment_id=appointment.id,
            desired=appointment.desired, patient_name=appointment.patient_name,
            patient_email=appointment.patient_email, doctor_name=doctor.name if doctor else "",
            doctor_email=doctor.email if doctor else "", clinic_name=appointment.clinic_name,
            timezone=appointment.timezone,
            start_time=meeting.start_time if meeting else appointment.start_time,
            duration_minutes=meeting.duration_minutes if meeting else appointment.duration_minutes,
            zoom_meeting_id=meeting.zoom_meeting_id if live and meeting else None,
            join_url=meeting.join_url if live and meeting else None,
            passcode=meeting.passcode if live and meeting else None,
        )


def _superseded_reason(s: _Snapshot) -> str | None:
    if s.kind in {"invite", "updated"}:
        if s.desired == states.CANCELLED:
            return "appointment cancelled before the notice went out"
        if s.zoom_meeting_id is None:
            return "meeting no longer exists"
    return None


def _render(ctx: WorkerContext, s: _Snapshot) -> EmailMessage:
    kind = NoticeKind(s.kind)
    cancelled = kind is NoticeKind.CANCELLED
    time = (
        MeetingTime(start_utc=s.start_time, duration_minutes=s.duration_minutes, timezone=s.timezone)
        if s.start_time is not None and s.duration_minutes is not None
        else None
    )
    mail_from = ctx.settings.mail_from
    if s.role == "patient":
        return render_patient(
            PatientNotice(
                kind=kind, appointment_id=s.appointment_id, version=s.version,
                patient_name=s.patient_name, patient_email=s.patient_email, doctor_name=s.doctor_name,
                clinic_name=s.clinic_name, time=time,
                join_url=None if cancelled else s.join_url, passcode=None if cancelled else s.passcode,
            ),
            mail_from,
            message_id=_message_id(s),
        )
    if s.role == "doctor":
        start_url = None
        if not cancelled and s.zoom_meeting_id is not None:
            start_url = ctx.zoom.get_meeting(s.zoom_meeting_id)["start_url"]  # fresh, never stored
        return render_doctor(
            DoctorNotice(
                kind=kind, appointment_id=s.appointment_id, version=s.version,
                doctor_name=s.doctor_name, doctor_email=s.doctor_email, patient_name=s.patient_name,
                clinic_name=s.clinic_name, time=time, start_url=start_url,
                join_url=None if cancelled else s.join_url,
            ),
            mail_from,
            message_id=_message_id(s),
        )
    raise PermanentFailure(f"unknown recipient role {s.role!r}")


def _message_id(s: _Snapshot) -> str:
    return f"<{s.appointment_id}.v{s.version}.{s.role}.{s.kind}@{MAIL_DOMAIN}>"
