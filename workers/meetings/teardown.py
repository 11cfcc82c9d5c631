"""Deleting a clinic's upcoming Zoom meetings before its data is erased
(``telemed clinics delete --delete-zoom-meetings``).

Each meeting is reached the way it was made (``workers.hosting.hosts.client_for_meeting``:
the doctor's own token for host ``me``, else the clinic's account app), deleted in Zoom,
then recorded as deleted, one at a time: a failure stops the run with the meetings done
so far recorded, and a rerun carries on with the rest. No patient is told: the clinic is
leaving, and what its patients hear about that is the clinic's to say.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from telemed.store import appointments
from telemed.store.clinic_erasure import upcoming_meetings
from telemed.store.models import utcnow
from telemed.workers.context import WorkerContext
from telemed.workers.hosting.hosts import client_for_meeting

log = structlog.get_logger("telemed.workers")


@dataclass(frozen=True)
class Teardown:
    deleted: int  # deleted in Zoom by this run
    already_gone: int  # Zoom no longer had them (deleted by hand, or a run before this one)


def delete_upcoming_meetings(ctx: WorkerContext, clinic_id: str) -> Teardown:
    """Delete every live, not yet ended Zoom meeting of ``clinic_id``; raises on the first
    Zoom failure (the ones before it stay recorded as deleted)."""
    with ctx.database.session() as session:
        meetings = []
        for m in upcoming_meetings(session, clinic_id):
            # Older rows do not record their doctor: the appointment's is the meeting's.
            appointment = None if m.doctor_id else appointments.get_appointment(session, m.appointment_id)
            owner = m.doctor_id or (appointment.doctor_id if appointment is not None else "")
            meetings.append((m.appointment_id, m.zoom_meeting_id, m.host, owner))
    deleted = gone = 0
    for appointment_id, zoom_meeting_id, host, owner in meetings:
        existed = client_for_meeting(ctx, owner, host).delete_meeting(zoom_meeting_id)
        with ctx.database.session() as session:
            meeting = appointments.get_meeting(session, appointment_id)
            if meeting is not None and meeting.deleted_at is None:
                meeting.deleted_at = utcnow()
                appointments.save(session, meeting)
        deleted, gone = deleted + existed, gone + (not existed)
        log.info("clinic meeting deleted", appointment_id=appointment_id, zoom_meeting_id=zoom_meeting_id,
                 outcome="deleted" if existed else "already_gone")
    return Teardown(deleted, gone)
