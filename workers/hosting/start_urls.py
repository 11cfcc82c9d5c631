"""Fresh host start links from Zoom: fetched when needed, never stored, logged or queued.

The meeting is reached the way it was made, through
``workers.hosting.hosts.client_for_meeting`` (the doctor's own token for host ``me``, the
account client otherwise), as everything that acts on an existing meeting is.
"""

from __future__ import annotations

from telemed.store import appointments
from telemed.workers.context import WorkerContext
from telemed.workers.hosting.hosts import client_for_meeting


class NoLiveMeeting(LookupError):
    """The appointment has no live Zoom meeting (cancelled, deleted, not yet created)."""


def fresh_start_url(ctx: WorkerContext, doctor_id: str, zoom_meeting_id: int, host: str) -> str:
    """A start_url minted now (Zoom's expire after about two hours)."""
    url = client_for_meeting(ctx, doctor_id, host).get_meeting(zoom_meeting_id)["start_url"]
    if not isinstance(url, str) or not url:
        raise NoLiveMeeting("Zoom returned no start_url")
    return url


def fetch_start_url(ctx: WorkerContext, appointment_id: str) -> str:
    """For the web's start links and access API (injected as ``start_url_fetcher``)."""
    with ctx.database.session() as session:
        appointment = appointments.get_appointment(session, appointment_id)
        meeting = appointments.live_meeting(session, appointment_id)
        if appointment is None or meeting is None:
            raise NoLiveMeeting("no live meeting")
        doctor_id, meeting_id, host = appointment.doctor_id, meeting.zoom_meeting_id, meeting.host
    return fresh_start_url(ctx, doctor_id, meeting_id, host)
