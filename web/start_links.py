"""``GET /start/{token}``: the doctor's signed start link, resolved at click time.

The token (``foundation.start_tokens``) names one doctor and one appointment and expires after
the appointment ends. Opening it checks, in order: the signature, the expiry, that the
appointment is still active and still assigned to that doctor, and that its meeting
exists; then a start_url is minted by Zoom now, the disclosure is audited (who, when,
which appointment; never the URL) and the browser is redirected (302). Anything else gets
a plain page saying what happened and what to do, and no redirect.
"""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from telemed.foundation import start_tokens
from telemed.foundation.tenancy import clinic_of, external_id
from telemed.store import appointments, notifications, states
from telemed.web.deps import services
from telemed.web.pages import PRIVATE_HEADERS, Notice, mark, render_notice
from telemed.web.services import WebServices
from telemed.zoom.errors import ZoomError, ZoomNotFound, ZoomRateLimited, ZoomTransientError

log = structlog.get_logger("telemed.web.start_links")
router = APIRouter(tags=["start links"])

_N = mark
Refusal = Notice


INVALID = Refusal(403, "invalid", _N("This start link is not valid"),
                  _N("The link is incomplete or has been changed."),
                  _N("Open the link exactly as it appears in your latest e-mail from telemed."))
EXPIRED = Refusal(410, "expired", _N("This start link has expired"),
                  _N("Start links stop working after the appointment has ended."),
                  _N("If the appointment was moved, use the link in the newest e-mail about it."))
CANCELLED = Refusal(410, "cancelled", _N("This appointment has been cancelled"),
                    _N("The video appointment was cancelled, so there is no meeting to start."),
                    _N("Please check your schedule or contact the clinic."))
NOT_ASSIGNED = Refusal(403, "not_assigned", _N("This appointment is no longer yours"),
                       _N("The appointment has been assigned to another doctor."),
                       _N("Please contact the clinic if you think this is wrong."))
NOT_READY = Refusal(409, "not_ready", _N("The meeting is not ready yet"),
                    _N("The Zoom meeting for this appointment is still being set up."),
                    _N("Please try the link again in a minute."))
ZOOM_BUSY = Refusal(503, "zoom_unavailable", _N("Zoom is not answering right now"),
                    _N("We could not get a start link from Zoom."),
                    _N("Please try the link again in a minute."))
ZOOM_FAILED = Refusal(502, "zoom_error", _N("Zoom refused the request"),
                      _N("We could not get a start link from Zoom for this meeting."),
                      _N("Please sign in to Zoom and start the meeting from there, or contact the clinic."))
UNAVAILABLE = Refusal(503, "unavailable", _N("Start links are not available"),
                      _N("This service cannot reach Zoom at the moment."),
                      _N("Please try again later, or sign in to Zoom and start the meeting there."))

def page(refusal: Refusal) -> HTMLResponse:
    return render_notice(refusal, _N("telemed video appointments"))


@router.get("/start/{token}", response_class=HTMLResponse, summary="Open a doctor's signed start link",
            responses={302: {"description": "Redirect to Zoom as the host"}, 403: {}, 409: {}, 410: {}, 503: {}})
def open_start_link(token: str, svc: WebServices = Depends(services)) -> Response:
    try:
        claim = start_tokens.verify(svc.settings.fernet_keys, token)
    except start_tokens.StartTokenError as exc:
        log.info("start link refused", outcome=exc.reason)
        return page(EXPIRED if exc.reason == "expired" else INVALID)
    refusal = _check_appointment(svc, claim)
    if refusal is None:
        refusal, url = _fetch(svc, claim.appointment_id)
    if refusal is not None:
        log.info("start link refused", appointment_id=claim.appointment_id, doctor_id=claim.doctor_id,
                 outcome=refusal.outcome)
        return page(refusal)
    assert url is not None
    with svc.database.session() as session:
        who = notifications.audit_principal(f"doctor:{external_id(claim.doctor_id)}", clinic_of(claim.doctor_id))
        notifications.record_disclosure(session, appointment_id=claim.appointment_id, doctor_id=claim.doctor_id,
                                        principal=who, via=notifications.VIA_START_LINK)
    log.info("start link opened", appointment_id=claim.appointment_id, doctor_id=claim.doctor_id,
             outcome="redirected")
    return RedirectResponse(url, status_code=302, headers=PRIVATE_HEADERS)


def _check_appointment(svc: WebServices, claim: start_tokens.StartClaim) -> Refusal | None:
    with svc.database.session() as session:
        appointment = appointments.get_appointment(session, claim.appointment_id)
        if appointment is None or appointment.desired == states.CANCELLED:
            return CANCELLED
        if appointment.doctor_id != claim.doctor_id:
            return NOT_ASSIGNED
        if appointments.live_meeting(session, claim.appointment_id) is None:
            return NOT_READY
    return None


def _fetch(svc: WebServices, appointment_id: str) -> tuple[Refusal | None, str | None]:
    if svc.start_url_fetcher is None:
        return UNAVAILABLE, None
    try:
        return None, svc.start_url_fetcher(appointment_id)
    except LookupError:
        return NOT_READY, None
    except ZoomNotFound:
        return NOT_READY, None  # deleted in Zoom: the pipeline re-creates it
    except (ZoomRateLimited, ZoomTransientError):
        return ZOOM_BUSY, None
    except ZoomError as exc:
        log.warning("start link: Zoom refused", appointment_id=appointment_id, error_type=type(exc).__name__)
        return ZOOM_FAILED, None
