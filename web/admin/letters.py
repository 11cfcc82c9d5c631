"""Dead letters as a clinic sees them: only its own, named by its own ids.

A dead letter's arguments are what its actor was queued with. The event and appointment
actors take a scoped key, which names its clinic (foundation.tenancy.clinic_of); the
notification actors take an outbox row number and the Zoom webhook actor a receipt
number, whose clinic the store knows (store.ownership). A letter whose clinic cannot be
told (a Zoom webhook about no meeting or doctor of ours, a row since deleted) is no
clinic's: the operator sees it with ``telemed dlq``. Retrying checks the owner again, so
guessing another clinic's message id only ever finds "no longer exists".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from telemed.foundation import dead_letters
from telemed.foundation.dead_letters import DeadLetter
from telemed.foundation.shown_ids import own_text
from telemed.foundation.tenancy import clinic_of, external_id
from telemed.store import ownership
from telemed.store.db import Database

# The actors by what their first argument is (workers.queue.work_queue names them).
BY_EVENT_KEY = {"process_event"}
BY_APPOINTMENT_KEY = {"sync_meeting"}
BY_OUTBOX_ROW = {"deliver_notification"}
BY_FAILED_MESSAGE = {"notification_failed"}  # (the failed deliver_notification message, retry info)
BY_RECEIPT_ROW = {"process_zoom_webhook"}
LIST_LIMIT = 2000  # the newest dead letters of the whole deployment looked through


@dataclass(frozen=True)
class ShownLetter:
    message_id: str
    queue: str
    actor: str
    subject: str  # what it was about, in the clinic's own ids
    appointment_id: str | None  # the clinic's own id, when the letter is about one
    retries: int
    failed_at: datetime
    reason: str


@dataclass(frozen=True)
class _Owner:
    clinic_id: str
    subject: str
    appointment_key: str | None = None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _outbox_row(letter: DeadLetter) -> int | None:
    if not letter.args:
        return None
    if letter.actor in BY_OUTBOX_ROW:
        return _int(letter.args[0])
    if letter.actor in BY_FAILED_MESSAGE and isinstance(letter.args[0], dict):
        inner = letter.args[0].get("args") or []
        return _int(inner[0]) if isinstance(inner, list) and inner else None
    return None


def _owners(database: Database, letters: Sequence[DeadLetter]) -> dict[str, _Owner]:
    """message id -> owner, for the letters whose clinic can be told."""
    owners: dict[str, _Owner] = {}
    outbox_rows = {m.message_id: r for m in letters if (r := _outbox_row(m)) is not None}
    receipts = {m.message_id: r for m in letters
                if m.actor in BY_RECEIPT_ROW and m.args and (r := _int(m.args[0])) is not None}
    with database.session() as s:
        outbox = ownership.outbox_owners(s, outbox_rows.values())
        receipt = ownership.receipt_owners(s, receipts.values())
    for letter in letters:
        first = letter.args[0] if letter.args else None
        if letter.actor in BY_EVENT_KEY and isinstance(first, str):
            owners[letter.message_id] = _Owner(clinic_of(first), f"event {external_id(first)}")
        elif letter.actor in BY_APPOINTMENT_KEY and isinstance(first, str):
            owners[letter.message_id] = _Owner(clinic_of(first), f"appointment {external_id(first)}", first)
        elif letter.message_id in outbox_rows and outbox_rows[letter.message_id] in outbox:
            row = outbox[outbox_rows[letter.message_id]]
            about = f" about appointment {external_id(row.appointment_id)}" if row.appointment_id else ""
            owners[letter.message_id] = _Owner(row.clinic_id, f"{row.kind} to {row.role}{about}", row.appointment_id)
        elif letter.message_id in receipts and receipts[letter.message_id] in receipt:
            clinic, key = receipt[receipts[letter.message_id]]
            subject = (f"Zoom webhook about appointment {external_id(key)}" if key
                       else "Zoom webhook about a doctor's Zoom connection")
            owners[letter.message_id] = _Owner(clinic, subject, key)
    return owners


def clinic_letters(client: redis.Redis, namespace: str, database: Database, clinic_id: str) -> list[ShownLetter]:
    """The clinic's dead letters, newest first."""
    letters = dead_letters.list_dead(client, namespace, limit=LIST_LIMIT)
    owners = _owners(database, letters)
    shown = []
    for letter in letters:
        owner = owners.get(letter.message_id)
        if owner is None or owner.clinic_id != clinic_id:
            continue
        shown.append(ShownLetter(
            message_id=letter.message_id, queue=letter.queue, actor=letter.actor, subject=owner.subject,
            appointment_id=external_id(owner.appointment_key) if owner.appointment_key else None,
            retries=letter.retries, failed_at=letter.failed_at, reason=own_text(letter.reason, clinic_id)))
    return shown


def clinic_letter(client: redis.Redis, namespace: str, database: Database, clinic_id: str,
                  message_id: str) -> DeadLetter | None:
    """The dead letter ``message_id`` if it is the clinic's; None if missing or another's."""
    letter = dead_letters.get_dead(client, namespace, message_id)
    if letter is None:
        return None
    owner = _owners(database, [letter]).get(message_id)
    return letter if owner is not None and owner.clinic_id == clinic_id else None
