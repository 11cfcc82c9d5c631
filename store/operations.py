"""Operations tables: Zoom webhook receipts, an inbox for Zoom's notifications.

A Zoom webhook is committed here before it is queued, exactly like a booking event in
the inbox, so a lost queue message delays its handling but never loses it; the
reconciler re-queues receipts still pending. ``dedupe_key`` (a hash of the raw body)
makes Zoom's retries of one notification land on the same row. (Admin alerts live in
``store.notifications``: ``queue_alert`` records them and mails the administrator.)

Each clinic's Zoom app posts to its own endpoint (``/zoom/webhook/{clinic}``), signed with
its own secret token; the receipt remembers which clinic's endpoint it came through,
and only that clinic's meetings may be touched by it. The clinic is kept in the stored
payload itself (a first line ``clinic=<id>`` before the body, which a JSON notification
can never start with), so a receipt from before clinics is the default clinic's.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Column, String, exists
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, func, select

from telemed.foundation.tenancy import DEFAULT_CLINIC
from telemed.store import states
from telemed.store.models import Appointment, Meeting, OutboxMessage, _ts, utcnow
from telemed.store.types import EncryptedText

RECEIPT_PENDING = "pending"
RECEIPT_PROCESSED = "processed"
RECEIPT_IGNORED = "ignored"
RECEIPT_FAILED = "failed"
MAX_DURATION_MINUTES = 1440  # the contract's longest appointment


class ZoomWebhookReceipt(SQLModel, table=True):
    __tablename__ = "zoom_webhook_receipts"

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=64, unique=True)
    event: str = Field(max_length=64)
    zoom_meeting_id: int | None = Field(default=None, sa_column=Column(BigInteger(), nullable=True, index=True))
    zoom_user_id: str | None = Field(default=None, max_length=64)
    # The whole notification: it names hosts and topics, so it is encrypted like the inbox.
    payload: str = Field(sa_column=Column(EncryptedText(), nullable=False))
    status: str = Field(default=RECEIPT_PENDING, max_length=16, index=True)
    received_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    processed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    note: str | None = Field(default=None, sa_column=Column(String(300), nullable=True))


_CLINIC_LINE = "clinic="


def dedupe_key(raw_body: bytes, clinic_id: str = DEFAULT_CLINIC) -> str:
    if clinic_id != DEFAULT_CLINIC:  # the same bytes at two clinics' endpoints are two notifications
        raw_body = clinic_id.encode() + b"\x00" + raw_body
    return hashlib.sha256(raw_body).hexdigest()


def receipt_payload(clinic_id: str, notification: str) -> str:
    """What is stored: the notification, behind the clinic it came for (not the default's)."""
    return notification if clinic_id == DEFAULT_CLINIC else f"{_CLINIC_LINE}{clinic_id}\n{notification}"


def read_receipt_payload(payload: str) -> tuple[str, str]:
    """(clinic id, the notification's JSON text) of a stored payload."""
    if payload.startswith(_CLINIC_LINE):
        first, _, rest = payload.partition("\n")
        return first[len(_CLINIC_LINE):], rest
    return DEFAULT_CLINIC, payload


def record_receipt(
    session: Session, *, raw_body: bytes, event: str, payload: str,
    zoom_meeting_id: int | None = None, zoom_user_id: str | None = None, clinic_id: str = DEFAULT_CLINIC,
) -> tuple[ZoomWebhookReceipt, bool]:
    """Store a webhook that came through ``clinic_id``'s endpoint unless this exact
    notification is known there. The flag says it is new."""
    key = dedupe_key(raw_body, clinic_id)
    payload = receipt_payload(clinic_id, payload)
    existing = session.exec(select(ZoomWebhookReceipt).where(ZoomWebhookReceipt.dedupe_key == key)).first()
    if existing is not None:
        return existing, False
    receipt = ZoomWebhookReceipt(dedupe_key=key, event=event, payload=payload,
                                 zoom_meeting_id=zoom_meeting_id, zoom_user_id=zoom_user_id)
    try:
        with session.begin_nested():
            session.add(receipt)
    except IntegrityError:  # Zoom's retry raced its first delivery
        raced = session.exec(select(ZoomWebhookReceipt).where(ZoomWebhookReceipt.dedupe_key == key)).first()
        if raced is None:
            raise
        return raced, False
    session.flush()
    return receipt, True


def get_receipt(session: Session, receipt_id: int) -> ZoomWebhookReceipt | None:
    return session.get(ZoomWebhookReceipt, receipt_id)


def finish_receipt(session: Session, receipt: ZoomWebhookReceipt, status: str, note: str | None = None) -> None:
    receipt.status = status
    receipt.note = None if note is None else note[:300]
    receipt.processed_at = utcnow()
    session.add(receipt)


def pending_receipt_ids(session: Session, older_than: datetime, limit: int = 1000) -> list[int]:
    statement = (
        select(ZoomWebhookReceipt.id)
        .where(ZoomWebhookReceipt.status == RECEIPT_PENDING, col(ZoomWebhookReceipt.received_at) < older_than)
        .order_by(col(ZoomWebhookReceipt.id))
        .limit(limit)
    )
    return [i for i in session.exec(statement) if i is not None]


def meeting_by_zoom_id(session: Session, zoom_meeting_id: int) -> Meeting | None:
    return session.exec(select(Meeting).where(Meeting.zoom_meeting_id == zoom_meeting_id)).first()


def drifted_appointment_ids(session: Session, older_than: datetime, limit: int = 1000) -> list[str]:
    """Appointments whose Zoom meeting does not match their desired state, version aside.

    Scheduled and not yet over but without a live meeting (deleted in Zoom, a lost re-sync),
    or cancelled with a meeting still live. Appointments behind on version are found by
    ``store.appointments.unsynced_appointment_ids``; those needing a person are left alone.
    """
    now = utcnow()
    live = exists().where(col(Meeting.appointment_id) == col(Appointment.id), col(Meeting.deleted_at).is_(None))
    settled = col(Appointment.state).not_in([states.NEEDS_ATTENTION, states.COMPLETED])
    missing = select(Appointment.id, Appointment.start_time, Appointment.duration_minutes).where(
        Appointment.desired == states.SCHEDULED, settled, ~live,
        col(Appointment.synced_version) >= col(Appointment.version),
        col(Appointment.updated_at) < older_than,
        col(Appointment.start_time) > now - timedelta(minutes=MAX_DURATION_MINUTES),
    ).limit(limit)
    ids = [
        appointment_id for appointment_id, start, minutes in session.exec(missing)
        if start is not None and start + timedelta(minutes=minutes or 0) > now
    ]
    lingering = select(Appointment.id).where(
        Appointment.desired == states.CANCELLED, settled, live, col(Appointment.updated_at) < older_than,
    ).limit(limit)
    return sorted(set(ids) | set(session.exec(lingering)))


def count_outbox_pending(session: Session) -> int:
    statement = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == states.OUTBOX_PENDING)
    return int(session.exec(statement).one())
