"""Read-only views for one clinic's admin page: its doctors and what went wrong lately.

(Its appointments: store.appointment_list and store.appointment_detail.)

Plain data out (no ORM objects leave the session), ids as the clinic's own, and only the
clinic's rows: every query is bounded by the clinic. Nothing secret: no tokens, links or
passcodes; no patient contacts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from telemed.foundation.shown_ids import own_text
from telemed.foundation.tenancy import clinic_of, external_id
from telemed.store import states
from telemed.store.models import Appointment, Doctor, Meeting, OutboxMessage
from telemed.store.notifications import ADMIN_ROLE, NO_APPOINTMENT, Alert
from telemed.store.operations import RECEIPT_FAILED, ZoomWebhookReceipt
from telemed.store.zoom_tokens import DoctorZoomToken

MAX_DOCTORS = 1000


@dataclass(frozen=True)
class DoctorRow:
    id: str  # the clinic's own id
    name: str
    zoom_user: str
    connection: str
    token_expires_at: datetime | None


@dataclass(frozen=True)
class Failure:
    at: datetime
    what: str
    detail: str
    appointment_id: str | None = None  # the clinic's own id


def doctors(session: Session, clinic_id: str, limit: int = MAX_DOCTORS) -> list[DoctorRow]:
    statement = (
        sa_select(col(Doctor.id), col(Doctor.name), col(Doctor.zoom_user), col(Doctor.connection),
                  col(DoctorZoomToken.expires_at))
        .join(DoctorZoomToken, col(DoctorZoomToken.doctor_id) == col(Doctor.id), isouter=True)
        .where(col(Doctor.clinic_id) == clinic_id).order_by(col(Doctor.id)).limit(limit)
    )
    return [DoctorRow(external_id(r.id), r.name, r.zoom_user, r.connection, r.expires_at)
            for r in session.execute(statement)]


def doctor_key_in(session: Session, clinic_id: str, key: str | None) -> bool:
    """Whether ``key`` is a doctor of ``clinic_id`` (another clinic's is not)."""
    if key is None:
        return False
    doctor = session.get(Doctor, key)
    return doctor is not None and doctor.clinic_id == clinic_id


def recent_failures(session: Session, clinic_id: str, limit: int = 30) -> list[Failure]:
    """The clinic's alerts, appointments that need a person, notices that failed for good,
    and Zoom webhooks about its meetings that could not be handled. Newest first."""
    found: list[Failure] = []

    def failure(at: datetime, what: str, detail: str, key: str | None = None) -> Failure:
        shown = None if key is None or key == NO_APPOINTMENT else external_id(key)
        return Failure(at, what, own_text(detail, clinic_id), shown)

    alerts = select(Alert).where(col(Alert.clinic_id) == clinic_id).order_by(col(Alert.id).desc()).limit(limit)
    for alert in session.exec(alerts):
        # An alert recorded before it knew its clinic names the appointment: its key decides.
        if alert.appointment_id is None or clinic_of(alert.appointment_id) == clinic_id:
            found.append(failure(alert.created_at, f"alert: {alert.kind}", alert.subject, alert.appointment_id))
    attention = (select(Appointment).where(col(Appointment.clinic_id) == clinic_id,
                                           col(Appointment.state) == states.NEEDS_ATTENTION)
                 .order_by(col(Appointment.updated_at).desc()).limit(limit))
    for appointment in session.exec(attention):
        found.append(failure(appointment.updated_at, "needs attention", appointment.attention_reason or "",
                             appointment.id))
    failed = (sa_select(OutboxMessage)
              .join(Appointment, col(Appointment.id) == col(OutboxMessage.appointment_id))
              .where(col(OutboxMessage.status) == states.OUTBOX_FAILED, col(Appointment.clinic_id) == clinic_id)
              .order_by(col(OutboxMessage.id).desc()).limit(limit))
    alert_mails = (sa_select(OutboxMessage)
                   .join(Alert, col(Alert.id) == col(OutboxMessage.version))
                   .where(col(OutboxMessage.status) == states.OUTBOX_FAILED,
                          col(OutboxMessage.appointment_id) == NO_APPOINTMENT,
                          col(OutboxMessage.role) == ADMIN_ROLE, col(Alert.clinic_id) == clinic_id)
                   .order_by(col(OutboxMessage.id).desc()).limit(limit))
    for statement in (failed, alert_mails):
        for (message,) in session.execute(statement):
            found.append(failure(message.created_at, f"{message.channel} to {message.role} failed",
                                 f"{message.kind} v{message.version}: {message.last_error or ''}",
                                 message.appointment_id))
    # A Zoom webhook is the clinic's when it names one of its meetings; one that names no
    # meeting of ours belongs to no clinic (the operator's: ``telemed status``, the logs).
    receipts = (sa_select(col(ZoomWebhookReceipt.received_at), col(ZoomWebhookReceipt.event),
                          col(ZoomWebhookReceipt.note), col(Meeting.appointment_id))
                .join(Meeting, col(Meeting.zoom_meeting_id) == col(ZoomWebhookReceipt.zoom_meeting_id))
                .join(Appointment, col(Appointment.id) == col(Meeting.appointment_id))
                .where(col(ZoomWebhookReceipt.status) == RECEIPT_FAILED, col(Appointment.clinic_id) == clinic_id)
                .order_by(col(ZoomWebhookReceipt.id).desc()).limit(limit))
    for received_at, event, note, key in session.execute(receipts):
        found.append(failure(received_at, f"zoom webhook {event}", note or "", key))
    found.sort(key=lambda f: f.at, reverse=True)
    return found[:limit]
