"""Which clinic owns a row that is named only by a number.

Queue messages carry ids only (principle 1). Most are scoped keys and tell their clinic
themselves (``foundation.tenancy.clinic_of``); a notification's outbox id and a Zoom
webhook receipt's id do not, so whoever must sort messages by clinic (``telemed dlq
--clinic``, a clinic's erasure) asks here. A row that no longer exists has no owner (None).
"""

from __future__ import annotations

from collections.abc import Collection

from sqlmodel import Session, col, func, select

from telemed.foundation.tenancy import clinic_of
from telemed.store.models import Doctor, Meeting, OutboxMessage
from telemed.store.notifications import ADMIN_ROLE, NO_APPOINTMENT, Alert
from telemed.store.operations import ZoomWebhookReceipt

# Bounds the IN lists (SQLite allows 32766 parameters; PostgreSQL 65535).
_CHUNK = 500


def _chunks(ids: Collection[int]) -> list[list[int]]:
    ordered = sorted(set(ids))
    return [ordered[i:i + _CHUNK] for i in range(0, len(ordered), _CHUNK)]


def outbox_owners(session: Session, outbox_ids: Collection[int]) -> dict[int, str]:
    """The clinic of each outbox row found: its appointment's, or its alert's (an admin
    alert's row names no appointment; its version is the alert's id)."""
    owners: dict[int, str] = {}
    alert_rows: dict[int, int] = {}
    for chunk in _chunks(outbox_ids):
        statement = select(OutboxMessage.id, OutboxMessage.appointment_id, OutboxMessage.role,
                           OutboxMessage.version).where(col(OutboxMessage.id).in_(chunk))
        for row_id, appointment_id, role, version in session.exec(statement):
            assert row_id is not None
            if appointment_id == NO_APPOINTMENT and role == ADMIN_ROLE:
                alert_rows[row_id] = version
            else:
                owners[row_id] = clinic_of(appointment_id)
    if alert_rows:
        clinics: dict[int, str] = {}
        for chunk in _chunks(alert_rows.values()):
            for alert_id, clinic in session.exec(select(Alert.id, Alert.clinic_id).where(col(Alert.id).in_(chunk))):
                assert alert_id is not None
                clinics[alert_id] = clinic
        owners.update({row: clinics[alert] for row, alert in alert_rows.items() if alert in clinics})
    return owners


def receipt_owners(session: Session, receipt_ids: Collection[int]) -> dict[int, str]:
    """The clinic of each Zoom webhook receipt found: its meeting's, or for a notice about
    a Zoom user (an app deauthorized), the clinic of the doctors with that Zoom user when
    they are all of one clinic."""
    owners: dict[int, str] = {}
    for chunk in _chunks(receipt_ids):
        statement = (
            select(ZoomWebhookReceipt.id, Meeting.appointment_id, ZoomWebhookReceipt.zoom_user_id)
            .join(Meeting, col(Meeting.zoom_meeting_id) == col(ZoomWebhookReceipt.zoom_meeting_id), isouter=True)
            .where(col(ZoomWebhookReceipt.id).in_(chunk))
        )
        by_user: dict[int, str] = {}
        for receipt_id, appointment_id, zoom_user in session.exec(statement):
            assert receipt_id is not None
            if appointment_id is not None:
                owners[receipt_id] = clinic_of(appointment_id)
            elif zoom_user:
                by_user[receipt_id] = zoom_user.lower()  # Zoom users compare without case
        if by_user:
            users = sorted(set(by_user.values()))
            clinics: dict[str, set[str]] = {}
            lowered = func.lower(col(Doctor.zoom_user))
            for zoom_user, clinic in session.exec(select(lowered, Doctor.clinic_id).where(lowered.in_(users))):
                clinics.setdefault(zoom_user, set()).add(clinic)
            for receipt_id, zoom_user in by_user.items():
                found = clinics.get(zoom_user, set())
                if len(found) == 1:
                    owners[receipt_id] = next(iter(found))
    return owners
