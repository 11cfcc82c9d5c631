"""Deleting a clinic: the whole erasure path, in the order that keeps it safe and restartable.

1. Refuse the default clinic (it lives in the environment) and an unknown id. Refuse a
   clinic with meetings still to come in Zoom unless told what to do with them: delete
   them (``ZoomMeetings.DELETE``) or leave them (``ZoomMeetings.LEAVE``, the operator
   takes them on in Zoom). Nothing has changed yet when it refuses.
2. Close the clinic (status ``deleting``): nothing new is accepted for it.
3. With ``DELETE``, delete its upcoming Zoom meetings through its own Zoom app
   (``workers.meetings.teardown``). A Zoom failure stops here, before any row is erased.
4. Erase its Redis state (``workers.clinic_redis``) while its rows can still tell whose
   messages are whose and which token keys are its own.
5. Erase its rows, table by table in bounded batches (``store.clinic_erasure``).
6. Erase its Redis state again: whatever a worker still busy with the clinic left there.
7. Make the clinic row a tombstone.

Every step is idempotent, so a crash anywhere and a rerun of the same command finish the
job; a rerun on a finished tombstone sweeps Redis once more (for work a worker held in
memory while the clinic was erased) and changes nothing else.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from telemed.store import clinic_erasure
from telemed.store.clinic_erasure import BatchHook, ErasureRefused
from telemed.store.clinic_tables import CLINIC_DELETED
from telemed.store.db import Database
from telemed.workers import clinic_redis
from telemed.workers.meetings.teardown import Teardown
from telemed.workers.queue import ownership


class ZoomMeetings(enum.Enum):
    REFUSE = "refuse"  # the default: stop if any meeting is still to come
    DELETE = "delete"  # delete them in Zoom first
    LEAVE = "leave"  # leave them in Zoom (the operator said so)


class DeletionRefused(Exception):
    """The clinic was not deleted, and nothing was changed; the text says why."""


@dataclass
class DeletionReport:
    clinic_id: str
    already_erased: bool = False  # the clinic was a tombstone already: only Redis was swept
    zoom: Teardown | None = None
    meetings_left: int = 0  # upcoming meetings left in Zoom (ZoomMeetings.LEAVE)
    rows: dict[str, int] = field(default_factory=dict)
    redis: dict[str, int] = field(default_factory=dict)

    def add_redis(self, found: clinic_redis.RedisReport) -> None:
        for kind, count in found.removed.items():
            self.redis[kind] = self.redis.get(kind, 0) + count


def delete_clinic(
    database: Database, redis_client: redis.Redis, namespace: str, clinic_id: str, *,
    zoom_meetings: ZoomMeetings = ZoomMeetings.REFUSE,
    delete_zoom_meetings: Callable[[str], Teardown] | None = None,
    batch_size: int = clinic_erasure.DEFAULT_BATCH, on_batch: BatchHook | None = None,
) -> DeletionReport:
    """Erase ``clinic_id`` (see the module's steps). ``delete_zoom_meetings`` deletes the
    clinic's upcoming meetings in Zoom (``workers.meetings.teardown`` on a worker context)."""
    report = DeletionReport(clinic_id)
    owners = functools.partial(ownership.owners, database)
    try:
        with database.session() as session:
            status = clinic_erasure.clinic_status(session, clinic_id)
            upcoming = len(clinic_erasure.upcoming_meetings(session, clinic_id)) if status != CLINIC_DELETED else 0
    except ErasureRefused as exc:
        raise DeletionRefused(str(exc)) from None
    if status == CLINIC_DELETED:
        report.already_erased = True
        report.add_redis(clinic_redis.erase_clinic_state(redis_client, namespace, clinic_id, owners))
        return report
    if upcoming and zoom_meetings is ZoomMeetings.REFUSE:
        raise DeletionRefused(
            f"clinic {clinic_id} has {upcoming} meeting(s) still to come in Zoom: delete them with it "
            "(--delete-zoom-meetings) or leave them in Zoom (--leave-zoom-meetings)")
    if upcoming and zoom_meetings is ZoomMeetings.DELETE and delete_zoom_meetings is None:
        raise DeletionRefused("no way to reach Zoom was given to delete the clinic's meetings")

    with database.session() as session:
        clinic_erasure.close(session, clinic_id)
    if upcoming and zoom_meetings is ZoomMeetings.DELETE:
        assert delete_zoom_meetings is not None
        report.zoom = delete_zoom_meetings(clinic_id)  # raises: stops before any row is erased
    report.meetings_left = upcoming if zoom_meetings is ZoomMeetings.LEAVE else 0

    with database.session() as session:
        facts = clinic_erasure.facts(session, clinic_id)
    redis_facts = clinic_redis.RedisFacts(facts.zoom_account_id, facts.zoom_client_id, facts.doctor_ids)
    report.add_redis(clinic_redis.erase_clinic_state(redis_client, namespace, clinic_id, owners, redis_facts))
    rows = clinic_erasure.erase_rows(database, clinic_id, batch_size=batch_size, on_batch=on_batch)
    report.rows = rows.removed
    report.add_redis(clinic_redis.erase_clinic_state(redis_client, namespace, clinic_id, owners, redis_facts))
    with database.session() as session:
        clinic_erasure.finish(session, clinic_id)
    return report
