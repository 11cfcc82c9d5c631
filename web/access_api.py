"""The access API: what each principal may know about an appointment and its meeting.

| principal            | GET /v1/appointments/{id} | GET /v1/appointments/{id}/meeting          |
|----------------------|---------------------------|--------------------------------------------|
| admin                | yes, with operations info | join link, passcode, fresh start link      |
| booking              | yes                       | join link, passcode                        |
| doctor:<id>, own     | yes                       | join link, passcode, fresh start link      |
| doctor:<id>, other's | 404                       | 404                                        |
| no / bad / revoked key | 401                     | 401                                        |

Every key belongs to one clinic (``telemed keys create --clinic``), and the id in the
path is that clinic's own appointment id: it is looked up as the clinic's scoped key
(``foundation.tenancy.scoped``), so another clinic's appointment is simply not found.
A doctor asking for someone else's appointment, or anyone for another clinic's, gets
the same 404 as for one that does not exist, so keys cannot be used to probe other
doctors' schedules or other clinics' bookings. Answers show the clinic's own ids. Patient
names and contacts are never served here. Every start link handed out is minted by Zoom
at request time and audited (who of which clinic, when, which appointment; never the URL).
"""

from __future__ import annotations

from datetime import datetime

import structlog
from fastapi import APIRouter, Depends, HTTPException, Path, Response
from pydantic import BaseModel
from sqlmodel import Session

from telemed.foundation.tenancy import external_id, owned_by, scoped
from telemed.store import appointments, notifications, states
from telemed.store.api_keys import Principal
from telemed.store.status_view import AppointmentStatus, appointment_status
from telemed.web.deps import principal, services
from telemed.web.services import WebServices
from telemed.zoom.errors import ZoomError, ZoomNotFound, ZoomRateLimited, ZoomTransientError

log = structlog.get_logger("telemed.web.access")
router = APIRouter(prefix="/v1/appointments", tags=["appointments"])
AppointmentId = Path(pattern=r"^[A-Za-z0-9._:-]{1,128}$",
                     description="The booking system's appointment id (of the key's clinic)")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class AppointmentOut(BaseModel):
    id: str  # the clinic's own ids, as its booking system sent them
    version: int
    status: str  # scheduled | cancelled
    state: str  # pending | provisioned | cancelled | needs_attention
    start_time: datetime | None
    duration_minutes: int | None
    timezone: str
    doctor_id: str
    clinic_id: str  # the clinic the appointment (and the key) belongs to
    meeting_live: bool
    patient_join: str | None = None  # registered | fallback | off | open (store.status_view)
    # admin only
    synced_version: int | None = None
    attention_reason: str | None = None
    notifications: list[str] | None = None


class MeetingOut(BaseModel):
    appointment_id: str
    zoom_meeting_id: int
    join_url: str
    passcode: str
    start_time: datetime
    duration_minutes: int
    timezone: str
    # doctor (own appointment) and admin only; minted now, expires in about two hours
    start_url: str | None = None


class Problem(BaseModel):
    detail: str


def _not_found(appointment_id: str) -> HTTPException:
    return HTTPException(404, f"no appointment {appointment_id!r} for this key")


def _visible(session: Session, who: Principal, appointment_id: str, *, with_notices: bool = False) -> AppointmentStatus:
    """The appointment the key's clinic calls ``appointment_id``, if ``who`` may see it;
    404 alike for a missing one, another clinic's and another doctor's."""
    appointment = appointment_status(session, scoped(who.clinic_id, appointment_id), with_notices=with_notices)
    if appointment is None or not owned_by(appointment.id, who.clinic_id) or appointment.clinic_id != who.clinic_id:
        raise _not_found(appointment_id)
    if who.role == "doctor" and appointment.doctor_id != who.doctor_key:
        raise _not_found(appointment_id)
    if who.role not in {"admin", "booking", "doctor"}:
        raise HTTPException(403, "this key's role may not read appointments")
    return appointment


ERRORS: dict[int | str, dict[str, object]] = {401: {"model": Problem}, 404: {"model": Problem}}


@router.get("/{appointment_id}", response_model=AppointmentOut, response_model_exclude_none=True,
            responses=ERRORS, summary="An appointment's status")
def get_appointment(
    appointment_id: str = AppointmentId, who: Principal = Depends(principal), svc: WebServices = Depends(services)
) -> AppointmentOut:
    with svc.database.session() as session:
        appointment = _visible(session, who, appointment_id, with_notices=who.role == "admin")
    view = AppointmentOut(
        id=appointment_id, version=appointment.version, status=appointment.desired, state=appointment.state,
        start_time=appointment.start_time, duration_minutes=appointment.duration_minutes,
        timezone=appointment.timezone, doctor_id=external_id(appointment.doctor_id), clinic_id=who.clinic_id,
        meeting_live=appointment.meeting_live, patient_join=appointment.patient_join,
    )
    if who.role == "admin":
        view.synced_version = appointment.synced_version
        view.attention_reason = appointment.attention_reason
        view.notifications = [f"{n.role}:{n.kind}:{n.channel}:{n.status}" for n in appointment.notices]
    return view


@router.get("/{appointment_id}/meeting", response_model=MeetingOut, response_model_exclude_none=True,
            responses={**ERRORS, 502: {"model": Problem}, 503: {"model": Problem}},
            summary="How to join (and, for the assigned doctor or an admin, start) the meeting")
def get_meeting(
    response: Response, appointment_id: str = AppointmentId, who: Principal = Depends(principal),
    svc: WebServices = Depends(services),
) -> MeetingOut:
    response.headers.update(NO_STORE)
    with svc.database.session() as session:
        appointment = _visible(session, who, appointment_id)
        key = appointment.id  # the appointment's key inside telemed
        meeting = appointments.live_meeting(session, key)
        if meeting is None or appointment.desired == states.CANCELLED:
            raise HTTPException(404, f"appointment {appointment_id!r} has no live meeting "
                                     f"(status {appointment.desired}, state {appointment.state})")
        view = MeetingOut(
            appointment_id=appointment_id, zoom_meeting_id=meeting.zoom_meeting_id, join_url=meeting.join_url,
            passcode=meeting.passcode, start_time=meeting.start_time, duration_minutes=meeting.duration_minutes,
            timezone=meeting.timezone,
        )
        doctor_id = appointment.doctor_id
    # The clinic's admins and the assigned doctor (a doctor reaching here is the assigned
    # one of this clinic): nobody else ever gets a start link.
    if who.role in {"admin", "doctor"}:
        view.start_url = _start_url(svc, key, appointment_id)
        with svc.database.session() as session:
            notifications.record_disclosure(session, appointment_id=key, doctor_id=doctor_id,
                                            via=notifications.VIA_API,
                                            principal=notifications.audit_principal(who.label, who.clinic_id,
                                                                                    who.key_prefix))
        log.info("start link disclosed", appointment_id=key, principal=who.label, clinic_id=who.clinic_id,
                 via="api")
    return view


def _start_url(svc: WebServices, key: str, appointment_id: str) -> str:
    if svc.start_url_fetcher is None:
        raise HTTPException(503, "start links are not available: Zoom is not configured for this service")
    try:
        return svc.start_url_fetcher(key)
    except (LookupError, ZoomNotFound):
        raise HTTPException(404, f"appointment {appointment_id!r} has no live meeting in Zoom") from None
    except (ZoomRateLimited, ZoomTransientError):
        raise HTTPException(503, "Zoom is not answering; try again in a minute",
                            headers={"Retry-After": "30"}) from None
    except ZoomError as exc:
        log.warning("access api: Zoom refused", appointment_id=key, error_type=type(exc).__name__)
        raise HTTPException(502, "Zoom refused to mint a start link for this meeting") from None
