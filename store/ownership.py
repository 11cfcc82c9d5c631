"""Which clinic owns a row that is not named by a scoped key, and an admin key's standing.

A queue message carries ids only. Most are scoped keys (an event, an appointment) and
tell their clinic themselves (foundation.tenancy.clinic_of); a few are row numbers (an
outbox row, a Zoom webhook receipt), whose clinic is found here. Unknown rows belong to
no clinic: nobody's admin page shows them (the operator has ``telemed dlq``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from telemed.foundation.tenancy import clinic_of
from telemed.store.api_keys import ApiKey
from telemed.store.clinic_tables import CLINIC_DELETED, Clinic
from telemed.store.models import Appointment, Doctor, Meeting, OutboxMessage
from telemed.store.notifications import ADMIN_ROLE, NO_APPOINTMENT, Alert
from telemed.store.operations import ZoomWebhookReceipt

# Outbox and receipt ids are INTEGER columns: 32 bits on PostgreSQL, where a number past
# them fails the whole query ("integer out of range") instead of finding nothing. Dead
# letters carry whatever number a poison message had (tests/fuzz), and listing them must
# not fail for it; no row of ours has an id outside this range.
ROW_IDS = range(1, 2**31)
# Bounds the IN lists: `telemed dlq list` looks through up to 100,000 dead letters, and
# SQLite takes at most 32,766 parameters (PostgreSQL 65,535).
_CHUNK = 500


def _row_ids(ids: Iterable[int]) -> list[int]:
    return sorted({i for i in ids if i in ROW_IDS})


def _chunks(ids: Iterable[int]) -> list[list[int]]:
    ordered = _row_ids(ids)
    return [ordered[i:i + _CHUNK] for i in range(0, len(ordered), _CHUNK)]


@dataclass(frozen=True)
class OutboxOwner:
    clinic_id: str
    appointment_id: str | None  # the scoped key the row is about, if any
    role: str
    kind: str


def outbox_owners(session: Session, outbox_ids: Iterable[int]) -> dict[int, OutboxOwner]:
    """The clinic (and subject) of each outbox row that exists."""
    found: dict[int, OutboxOwner] = {}
    for chunk in _chunks(outbox_ids):
        rows = session.execute(
            sa_select(col(OutboxMessage.id), col(OutboxMessage.appointment_id), col(OutboxMessage.role),
                      col(OutboxMessage.kind), col(OutboxMessage.version), col(Alert.clinic_id))
            .join(Alert, (col(Alert.id) == col(OutboxMessage.version)) & (col(OutboxMessage.role) == ADMIN_ROLE),
                  isouter=True)
            .where(col(OutboxMessage.id).in_(chunk))
        )
        for row in rows:
            if row.appointment_id == NO_APPOINTMENT:
                if row.role != ADMIN_ROLE or row.clinic_id is None:
                    continue  # an alert that is gone: nobody's
                found[row.id] = OutboxOwner(row.clinic_id, None, row.role, row.kind)
            else:
                found[row.id] = OutboxOwner(clinic_of(row.appointment_id), row.appointment_id, row.role, row.kind)
    return found


def receipt_owners(session: Session, receipt_ids: Iterable[int]) -> dict[int, tuple[str, str | None]]:
    """(clinic, appointment key) of each Zoom webhook receipt found: its meeting's; or, for a
    notice about a Zoom user (an app deauthorized: no meeting, key None), the clinic of the
    doctors with that Zoom user when they are all of one clinic (the rule a clinic's erasure
    uses for the receipts it deletes, ``store.clinic_erasure``)."""
    found: dict[int, tuple[str, str | None]] = {}
    by_user: dict[int, str] = {}
    ids = _row_ids(receipt_ids)
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            sa_select(col(ZoomWebhookReceipt.id), col(ZoomWebhookReceipt.zoom_user_id),
                      col(Appointment.clinic_id), col(Appointment.id).label("appointment_id"))
            .join(Meeting, col(Meeting.zoom_meeting_id) == col(ZoomWebhookReceipt.zoom_meeting_id), isouter=True)
            .join(Appointment, col(Appointment.id) == col(Meeting.appointment_id), isouter=True)
            .where(col(ZoomWebhookReceipt.id).in_(ids[start:start + _CHUNK]))
        )
        for row in rows:
            if row.appointment_id is not None:
                found[row.id] = (row.clinic_id, row.appointment_id)
            elif row.zoom_user_id:
                by_user[row.id] = row.zoom_user_id.lower()  # Zoom users compare without case
    if by_user:
        users = sorted(set(by_user.values()))
        clinics: dict[str, set[str]] = {}
        lowered = func.lower(col(Doctor.zoom_user))
        for start in range(0, len(users), _CHUNK):
            for user, clinic in session.execute(
                    sa_select(lowered, col(Doctor.clinic_id)).where(lowered.in_(users[start:start + _CHUNK]))):
                clinics.setdefault(user, set()).add(clinic)
        for receipt_id, user in by_user.items():
            if len(owners_of := clinics.get(user, set())) == 1:
                found[receipt_id] = (next(iter(owners_of)), None)
    return found


@dataclass(frozen=True)
class KeyStanding:
    role: str
    clinic_id: str
    clinic_name: str | None  # None: the clinic has no row (the default clinic, configured from the environment)
    active: bool  # not revoked, and its clinic not deleted


def key_standing(session: Session, prefix: str) -> KeyStanding | None:
    """What an API key (by its public prefix) may do now, for a session made with it."""
    row = session.execute(
        sa_select(col(ApiKey.role), col(ApiKey.clinic_id), col(ApiKey.revoked_at), col(Clinic.name), col(Clinic.status))
        .join(Clinic, col(Clinic.id) == col(ApiKey.clinic_id), isouter=True)
        .where(col(ApiKey.prefix) == prefix)
    ).first()
    if row is None:
        return None
    return KeyStanding(row.role, row.clinic_id, row.name, row.revoked_at is None and row.status != CLINIC_DELETED)
