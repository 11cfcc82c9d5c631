"""Read-only views for the admin page: doctors and what went wrong lately.

(Its appointment table reads ``store.status_view``, the one status read model.)

Plain data out (no ORM objects leave the session), and nothing secret: no join links,
passcodes or patient contacts; patient names are not shown either, only their ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from telemed.store import states
from telemed.store.models import Appointment, Doctor, OutboxMessage
from telemed.store.notifications import Alert
from telemed.store.operations import RECEIPT_FAILED, ZoomWebhookReceipt
from telemed.store.zoom_tokens import DoctorZoomToken


@dataclass(frozen=True)
class DoctorRow:
    id: str
    name: str
    connection: str
    token_expires_at: datetime | None


@dataclass(frozen=True)
class Failure:
    at: datetime
    what: str
    detail: str
    appointment_id: str | None = None


def doctors(session: Session) -> list[DoctorRow]:
    tokens = {t.doctor_id: t for t in session.exec(select(DoctorZoomToken))}
    return [
        DoctorRow(id=d.id, name=d.name, connection=d.connection,
                  token_expires_at=tokens[d.id].expires_at if d.id in tokens else None)
        for d in session.exec(select(Doctor).order_by(col(Doctor.id)))
    ]


def recent_failures(session: Session, limit: int = 30) -> list[Failure]:
    """Alerts, appointments that need a person, notices that failed for good, bad webhooks."""
    found: list[Failure] = []
    for alert in session.exec(select(Alert).order_by(col(Alert.id).desc()).limit(limit)):
        found.append(Failure(alert.created_at, f"alert: {alert.kind}", alert.subject, alert.appointment_id))
    attention = select(Appointment).where(Appointment.state == states.NEEDS_ATTENTION).limit(limit)
    for appointment in session.exec(attention):
        found.append(Failure(appointment.updated_at, "needs attention", appointment.attention_reason or "",
                             appointment.id))
    failed = (select(OutboxMessage).where(OutboxMessage.status == states.OUTBOX_FAILED)
              .order_by(col(OutboxMessage.id).desc()).limit(limit))
    for message in session.exec(failed):
        found.append(Failure(message.created_at, f"{message.channel} to {message.role} failed",
                             f"{message.kind} v{message.version}: {message.last_error or ''}", message.appointment_id))
    receipts = (select(ZoomWebhookReceipt).where(ZoomWebhookReceipt.status == RECEIPT_FAILED)
                .order_by(col(ZoomWebhookReceipt.id).desc()).limit(limit))
    for receipt in session.exec(receipts):
        found.append(Failure(receipt.received_at, f"zoom webhook {receipt.event}", receipt.note or ""))
    found.sort(key=lambda f: f.at, reverse=True)
    return found[:limit]
