"""``GET /join/{token}``: the patient's signed join link, resolved at click time.

The token (``foundation.join_tokens``) names one appointment and the patient it was sent
to. Opening it reads the store now: a cancelled appointment shows a plain "cancelled"
page, one that ended more than ``OVER_AFTER`` ago an "over" page, a token for an earlier
patient of the appointment or a meeting still being (re-)made a page saying so; otherwise
the browser is redirected (302) to the patient's current Zoom link: their own registrant
link, or the meeting's passcode link when the host cannot use registration. Never a host
link. Every click with a valid signature is audited (time, appointment, outcome; no IP
address). The token is a credential: the access log masks it (``SECRET_PATH_SEGMENTS``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from telemed.foundation import join_tokens
from telemed.store import appointments, registrations, states
from telemed.web.deps import services
from telemed.web.pages import PRIVATE_HEADERS, Notice, mark, render_notice
from telemed.web.services import WebServices

log = structlog.get_logger("telemed.web.join_links")
router = APIRouter(tags=["join links"])

_N = mark
# After the end of the appointment, the link still leads into the meeting for this long
# (an overrunning consultation, a patient who dropped out and comes back).
OVER_AFTER = timedelta(hours=1)

INVALID = Notice(403, "invalid", _N("This link is not valid"),
                 _N("The link is incomplete or has been changed."),
                 _N("Open the link exactly as it appears in your latest e-mail about the appointment."))
CANCELLED = Notice(410, "cancelled", _N("This appointment was cancelled"),
                   _N("The video appointment was cancelled, so there is no meeting to join."),
                   _N("Please contact the clinic if you would like a new appointment."))
OVER = Notice(410, "over", _N("This appointment is over"),
              _N("The video appointment has ended."),
              _N("Please contact the clinic if you need another appointment."))
NOT_YOURS = Notice(403, "not_yours", _N("This link is no longer valid"),
                   _N("The appointment has changed since this link was sent."),
                   _N("Please use the link in your newest e-mail about it, or contact the clinic."))
NOT_READY = Notice(409, "not_ready", _N("The meeting is not ready yet"),
                   _N("The video meeting for this appointment is still being set up."),
                   _N("Please try the link again in a minute."))


def page(notice: Notice) -> HTMLResponse:
    return render_notice(notice, _N("telemed video appointments"))


@router.get("/join/{token}", response_class=HTMLResponse, summary="Open a patient's signed join link",
            responses={302: {"description": "Redirect to the patient's Zoom link"}, 403: {}, 409: {}, 410: {}})
def open_join_link(token: str, svc: WebServices = Depends(services)) -> Response:
    try:
        claim = join_tokens.verify(svc.settings.fernet_keys, token)
    except join_tokens.JoinTokenError as exc:
        log.info("join link refused", outcome=exc.reason)
        return page(INVALID)
    with svc.database.session() as session:
        notice, url = resolve(session, claim, datetime.now(UTC))
        registrations.record_join_click(session, claim.appointment_id, notice.outcome if notice else "redirected")
    if notice is not None:
        log.info("join link refused", appointment_id=claim.appointment_id, outcome=notice.outcome)
        return page(notice)
    assert url is not None
    log.info("join link opened", appointment_id=claim.appointment_id, outcome="redirected")
    return RedirectResponse(url, status_code=302, headers=PRIVATE_HEADERS)


def resolve(session: Session, claim: join_tokens.JoinClaim, now: datetime) -> tuple[Notice | None, str | None]:
    """What a click on the link gets now: a page, or the patient's current Zoom link."""
    appointment = appointments.get_appointment(session, claim.appointment_id)
    if appointment is None or appointment.desired == states.CANCELLED:
        return CANCELLED, None
    if appointment.patient_id != claim.patient_id:
        return NOT_YOURS, None
    if appointment.start_time is not None and appointment.duration_minutes is not None:
        ends = appointment.start_time + timedelta(minutes=appointment.duration_minutes)
        if now >= ends + OVER_AFTER:
            return OVER, None
    meeting = appointments.live_meeting(session, claim.appointment_id)
    if meeting is None:
        return NOT_READY, None  # being created, or re-created after Zoom lost it
    return None, registrations.patient_join_url(meeting)
