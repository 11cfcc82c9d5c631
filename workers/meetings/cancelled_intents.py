"""A cancelled appointment whose create may have happened after all.

A create that ended ambiguously (a 5xx, a timeout, a lost answer, a killed worker) leaves
its provisioning intent open, so the next attempt looks for the meeting by its marker
before creating another. When the appointment is cancelled before that next attempt,
there is no next create: without this step the intent stayed open for ever (the
reconciler re-queued the appointment on every pass) and a meeting made by the lost
create stayed live in Zoom until the orphan sweep, ten minutes later at best. The crash
test (tests/chaos) found both.

So a sync of a cancelled appointment with an open intent first looks for the marked
meeting, deletes it if Zoom has it, and closes the intent as abandoned. Transient Zoom
errors propagate (the sync is retried); when the meeting can no longer be reached at all
(no host, a revoked grant, a permanent refusal) the intent is closed anyway and the
orphan sweep is left to try.
"""

from __future__ import annotations

import structlog

from telemed.store import appointments, intents, states
from telemed.workers.context import WorkerContext
from telemed.workers.hosting.hosts import NoZoomHost, client_for_meeting
from telemed.workers.metrics import MEETINGS
from telemed.zoom import policy
from telemed.zoom.errors import ZoomAuthError, ZoomPermanentError

log = structlog.get_logger("telemed.workers")


def settle_cancelled_intent(ctx: WorkerContext, appointment_id: str) -> None:
    with ctx.database.session() as session:
        appointment = appointments.get_appointment(session, appointment_id)
        intent = intents.open_intent(session, appointment_id)
        if appointment is None or intent is None or appointment.desired != states.CANCELLED:
            return
        marker, host, doctor_id, intent_id = intent.marker, intent.host, appointment.doctor_id, intent.id
    try:
        client = client_for_meeting(ctx, doctor_id, host)
        found = policy.find_marked(client.list_meetings(host), marker)
        if found is not None and client.delete_meeting(int(found["id"])):
            MEETINGS.labels(action="orphan_deleted").inc()
            log.warning("deleted the meeting a lost create had made for a cancelled appointment",
                        appointment_id=appointment_id, zoom_meeting_id=found["id"])
    except (NoZoomHost, ZoomAuthError, ZoomPermanentError) as exc:
        log.warning("cannot look for a lost create's meeting; leaving it to the orphan sweep",
                    appointment_id=appointment_id, error_type=type(exc).__name__)
    with ctx.database.session() as session:
        intent = intents.open_intent(session, appointment_id)
        if intent is not None and intent.id == intent_id:
            intents.close_intent(session, intent, status=states.INTENT_ABANDONED)
