"""Which clinic a queue message (queued or dead) belongs to.

Messages carry ids only. An event's or an appointment's id is a scoped key and names its
clinic (``foundation.tenancy``); a notification's outbox id and a Zoom webhook receipt's
id are numbers the store resolves (``store.ownership``). ``telemed dlq --clinic`` shows a
clinic its own dead letters with this; a clinic's erasure (``workers.clinic_redis``)
finds its queued and dead messages with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from telemed.foundation.tenancy import clinic_of
from telemed.store import ownership
from telemed.store.db import Database
from telemed.workers.queue.work_queue import (
    DELIVER_NOTIFICATION,
    NOTIFICATION_FAILED,
    PROCESS_EVENT,
    PROCESS_ZOOM_WEBHOOK,
    SYNC_MEETING,
)

_KEYED = {PROCESS_EVENT, SYNC_MEETING}


@dataclass(frozen=True)
class Reference:
    """What one message names: a scoped key, an outbox id or a receipt id (or nothing known)."""

    key: str | None = None
    outbox_id: int | None = None
    receipt_id: int | None = None


def reference(actor: str, args: Sequence[Any]) -> Reference:
    """The id a message of ``actor`` carries, by the actor's signature (``workers.actors``)."""
    first = args[0] if args else None
    if actor in _KEYED and isinstance(first, str):
        return Reference(key=first)
    if actor == NOTIFICATION_FAILED and isinstance(first, dict):
        # The dead notification's own message: its first argument is the outbox id.
        inner = first.get("args") or []
        return Reference(outbox_id=_int(inner[0] if inner else None))
    if actor == DELIVER_NOTIFICATION:
        return Reference(outbox_id=_int(first))
    if actor == PROCESS_ZOOM_WEBHOOK:
        return Reference(receipt_id=_int(first))
    return Reference()


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def owners(database: Database, messages: Sequence[tuple[str, Sequence[Any]]]) -> list[str | None]:
    """The clinic of each (actor, args), in order; None when no clinic can be told (a row
    that is gone, an actor this code does not know)."""
    refs = [reference(actor, args) for actor, args in messages]
    outbox_ids = [r.outbox_id for r in refs if r.outbox_id is not None]
    receipt_ids = [r.receipt_id for r in refs if r.receipt_id is not None]
    outbox_clinics: dict[int, str] = {}
    receipt_clinics: dict[int, str] = {}
    if outbox_ids or receipt_ids:
        with database.session() as session:
            outbox_clinics = {i: o.clinic_id for i, o in ownership.outbox_owners(session, outbox_ids).items()}
            receipt_clinics = {i: o[0] for i, o in ownership.receipt_owners(session, receipt_ids).items()}
    found: list[str | None] = []
    for ref in refs:
        if ref.key is not None:
            found.append(clinic_of(ref.key))
        elif ref.outbox_id is not None:
            found.append(outbox_clinics.get(ref.outbox_id))
        elif ref.receipt_id is not None:
            found.append(receipt_clinics.get(ref.receipt_id))
        else:
            found.append(None)
    return found
