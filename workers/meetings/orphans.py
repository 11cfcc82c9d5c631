"""Scheduler job: delete marked meetings in Zoom that no appointment owns.

Every meeting telemed creates carries a marker in its agenda (``zoom.policy.make_marker``).
A meeting whose marker is ours but which no live ``Meeting`` row owns is an orphan: a
duplicate from two creates that raced, a meeting created for an appointment cancelled
before the create was recorded, or one left by a lost answer that nobody adopted. The
sweep lists the upcoming meetings of every host telemed used in the last 30 days and
deletes the orphans older than a grace period; a meeting whose appointment still has an
open provisioning intent is left alone (its create may be in flight and will adopt it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import structlog

from telemed.foundation.tenancy import UnknownClinic, clinic_of
from telemed.store import appointments, intents, states
from telemed.store.models import utcnow
from telemed.workers.context import WorkerContext
from telemed.workers.hosting.hosts import ME, NoZoomHost, client_for_meeting
from telemed.workers.metrics import MEETINGS
from telemed.zoom import policy
from telemed.zoom.errors import ZoomError

log = structlog.get_logger("telemed.scheduler")

GRACE = timedelta(minutes=10)
LOOKBACK = timedelta(days=30)
_MARKER = re.compile(re.escape(policy.MARKER_PREFIX) + r"[0-9a-f]{20}(?![0-9a-f])")


def find_orphans(
    meetings: Iterable[Mapping[str, Any]],
    owned_ids: set[int],
    marker_owner: Mapping[str, tuple[str, bool]],
    now: datetime,
    grace: timedelta = GRACE,
) -> list[Mapping[str, Any]]:
    """The meetings to delete. ``marker_owner``: marker → (appointment_id, create in flight)."""
    orphans = []
    for meeting in meetings:
        found = _MARKER.search(str(meeting.get("agenda") or ""))
        if found is None or int(meeting.get("id") or 0) in owned_ids:
            continue  # not ours, or ours and in use
        created = policy.parse_zoom_time(meeting.get("created_at"))
        if created is None or now - created < grace:
            continue  # too young: its create may not be recorded yet
        owner = marker_owner.get(found.group(0))
        if owner is not None and owner[1]:
            continue  # an open intent: the retry adopts this meeting
        orphans.append(meeting)
    return orphans


def sweep_orphans_job(ctx: WorkerContext) -> dict[str, int]:
    now = utcnow()
    with ctx.database.session() as session:
        owned = {m.zoom_meeting_id for m in appointments.live_meetings(session)}
        rows = intents.intents_with_appointments_since(session, now - LOOKBACK)
        marker_owner: dict[str, tuple[str, bool]] = {}
        hosts: dict[tuple[str, str], str] = {}  # (client identity, host) -> doctor_id
        for intent, appointment in rows:
            in_flight = intent.open_for is not None and appointment.desired == states.SCHEDULED
            previous = marker_owner.get(intent.marker, (appointment.id, False))
            marker_owner[intent.marker] = (appointment.id, previous[1] or in_flight)
            # A host is listed through the client that made its meetings: the doctor's own,
            # or their clinic's account (each clinic's account sees only its meetings).
            identity = f"doctor:{appointment.doctor_id}" if intent.host == ME else f"clinic:{clinic_of(appointment.id)}"
            hosts.setdefault((identity, intent.host), appointment.doctor_id)
    report = {"hosts_checked": 0, "orphans_deleted": 0, "orphan_sweep_failed": 0}
    for (_, host), doctor_id in sorted(hosts.items()):
        try:
            client = client_for_meeting(ctx, doctor_id, host)
            listed = client.list_meetings(host)
            report["hosts_checked"] += 1
            for orphan in find_orphans(listed, owned, marker_owner, now):
                if client.delete_meeting(int(orphan["id"])):
                    report["orphans_deleted"] += 1
                    MEETINGS.labels(action="orphan_deleted").inc()
                    log.warning("orphan meeting deleted in Zoom", zoom_meeting_id=orphan["id"],
                                doctor_id=doctor_id)
        except (ZoomError, NoZoomHost, UnknownClinic) as exc:
            report["orphan_sweep_failed"] += 1
            log.warning("orphan sweep skipped a host", doctor_id=doctor_id, error_type=type(exc).__name__)
    return report

