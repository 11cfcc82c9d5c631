"""A doctor connects their own Zoom account: ``/oauth/zoom/connect`` and ``/callback``.

1. ``GET /oauth/zoom/connect?token=…`` checks the signed, expiring connect link
   (``foundation.connect_links``), writes a single-use state row with a PKCE verifier, sets a
   cookie binding that state to this browser, and redirects (302) to
   ``{TELEMED_ZOOM_OAUTH_URL}/authorize`` with ``state`` and an S256 ``code_challenge``.
2. ``GET /oauth/zoom/callback?code=…&state=…`` checks the state (known, unused, not
   expired, same browser), exchanges the code with the verifier, stores the doctor's
   tokens encrypted and marks the doctor connected; appointments parked because their
   doctor's connection had died are queued again.

Each clinic's doctors connect through their clinic's own OAuth app (its client id in the
redirect, its secret for the exchange): the link names the doctor's key, so the clinic is
``clinic_of(doctor_id)``; the callback knows it from the state row's doctor. One callback
URL serves every clinic (register ``{TELEMED_PUBLIC_URL}/oauth/zoom/callback`` in each app).

Declined consent, a replayed or expired code, a state mismatch or a bad link each get a
plain page saying what happened, status 400, and nothing is stored. No page, log line or
redirect carries a token, code or verifier.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from telemed.foundation import connect_links
from telemed.foundation.tenancy import UnknownClinic, ZoomApp, clinic_of
from telemed.store import appointments, oauth_states, zoom_tokens
from telemed.web.deps import services
from telemed.web.pages import PRIVATE_HEADERS, Notice, mark, render_notice
from telemed.web.services import WebServices
from telemed.zoom.apps import oauth_app
from telemed.zoom.errors import ZoomAuthError, ZoomError, ZoomGrantRevoked
from telemed.zoom.metrics import TOKEN_REFRESHES
from telemed.zoom.oauth import request_token

log = structlog.get_logger("telemed.web.oauth")
router = APIRouter(tags=["doctor Zoom connection"])

COOKIE = "telemed_zoom_oauth"
STATE_TTL = timedelta(minutes=15)  # time to sign in to Zoom and click "Allow"
_N = mark
Page = Notice


NOT_CONFIGURED = Page(503, "not_configured", _N("Zoom connection is not set up"),
                      _N("This telemed installation has no Zoom OAuth app configured."),
                      _N("Please tell your administrator (TELEMED_PUBLIC_URL and the clinic's Zoom OAuth app "
                         "(for the default clinic TELEMED_ZOOM_OAUTH_CLIENT_ID / _SECRET) must be set)."))
LINK_INVALID = Page(400, "link_invalid", _N("This connect link is not valid"),
                    _N("The link is incomplete or has been changed."),
                    _N("Open the link exactly as you received it, or ask the clinic for a new one."))
LINK_EXPIRED = Page(400, "link_expired", _N("This connect link has expired"),
                    _N("Connect links work for a limited time only."),
                    _N("Please ask the clinic for a new link."))
UNKNOWN_DOCTOR = Page(400, "unknown_doctor", _N("This connect link is not valid"),
                      _N("The doctor it was made for is not known to telemed."),
                      _N("Please ask the clinic for a new link."))
DENIED = Page(400, "denied", _N("Zoom was not connected"),
              _N("You declined the request in Zoom, so nothing was connected and nothing was stored."),
              _N("If that was a mistake, open your connect link again and choose Allow."))
STATE_REJECTED = Page(400, "state_rejected", _N("This sign-in could not be completed"),
                      _N("The answer from Zoom does not belong to a connection started in this browser, "
                         "or it was already used or is too old. Nothing was stored."),
                      _N("Open your connect link again in this browser and finish within 15 minutes."))
CODE_REJECTED = Page(400, "code_rejected", _N("This sign-in could not be completed"),
                     _N("Zoom did not accept the sign-in: it had expired or was already used. "
                        "Nothing was stored."),
                     _N("Open your connect link again to start over."))
ZOOM_UNAVAILABLE = Page(502, "zoom_unavailable", _N("Zoom is not answering right now"),
                        _N("We could not complete the connection with Zoom. Nothing was stored."),
                        _N("Please open your connect link again in a few minutes."))
ZOOM_REFUSED_APP = Page(502, "zoom_refused_app", _N("Zoom refused this application"),
                        _N("Zoom did not accept telemed's app credentials. Nothing was stored."),
                        _N("Please tell your administrator."))
CONNECTED = Page(200, "connected", _N("Your Zoom account is connected"),
                 _N("telemed will now schedule your video appointments in your own Zoom account."),
                 _N("You can close this page."))

def page(result: Page, *, clear_cookie: bool = False) -> HTMLResponse:
    response = render_notice(result, _N("telemed video appointments: connecting your Zoom account"))
    if clear_cookie:
        response.delete_cookie(COOKIE, path="/oauth/zoom")
    return response


def _clinic_app(svc: WebServices, doctor_id: str) -> ZoomApp | None:
    """The OAuth app of the doctor's clinic; None when it has none (or the clinic is gone)."""
    try:
        return oauth_app(svc.profile(clinic_of(doctor_id)))
    except UnknownClinic:
        return None


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: BASE64URL(SHA256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


@router.get("/oauth/zoom/connect", response_class=HTMLResponse, summary="Start connecting a doctor's Zoom",
            responses={302: {"description": "Redirect to Zoom's consent screen"}, 400: {}, 503: {}})
def connect(token: str = "", svc: WebServices = Depends(services)) -> Response:
    if not svc.settings.public_url:
        return page(NOT_CONFIGURED)
    try:
        claim = connect_links.read_connect_token(svc.settings.fernet_keys, token)
    except connect_links.ConnectTokenError as exc:
        log.info("connect link refused", outcome=exc.reason)
        return page(LINK_EXPIRED if exc.reason == "expired" else LINK_INVALID)
    clinic_id = clinic_of(claim.doctor_id)
    structlog.contextvars.bind_contextvars(clinic_id=clinic_id)
    app = _clinic_app(svc, claim.doctor_id)
    if app is None:
        log.info("connect link refused", doctor_id=claim.doctor_id, outcome="not_configured")
        return page(NOT_CONFIGURED)
    with svc.database.session() as session:
        if appointments.get_doctor(session, claim.doctor_id) is None:
            log.info("connect link refused", doctor_id=claim.doctor_id, outcome="unknown_doctor")
            return page(UNKNOWN_DOCTOR)
        issued = oauth_states.issue_state(session, claim.doctor_id, STATE_TTL)
    s = svc.settings
    assert s.public_url
    query = urlencode({
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": connect_links.callback_url(s.public_url),
        "state": issued.state,
        "code_challenge": pkce_challenge(issued.code_verifier),
        "code_challenge_method": "S256",
    })
    response = RedirectResponse(f"{s.zoom_oauth_url}/authorize?{query}", status_code=302,
                                headers=PRIVATE_HEADERS)
    response.set_cookie(
        COOKIE, issued.browser_nonce, max_age=int(STATE_TTL.total_seconds()), path="/oauth/zoom",
        httponly=True, samesite="lax", secure=urlsplit(s.public_url).scheme == "https",
    )
    log.info("zoom connect started", doctor_id=claim.doctor_id, outcome="redirected")
    return response


@router.get("/oauth/zoom/callback", response_class=HTMLResponse, summary="Zoom's answer to a connect request",
            responses={400: {}, 502: {}, 503: {}})
def callback(request: Request, state: str = "", code: str = "", error: str = "",
             svc: WebServices = Depends(services)) -> Response:
    if not svc.settings.public_url:
        return page(NOT_CONFIGURED)
    if not state:
        log.info("zoom connect refused", outcome="missing_state")
        return page(STATE_REJECTED, clear_cookie=True)
    with svc.database.session() as session:
        checked = oauth_states.consume_state(session, state, request.cookies.get(COOKIE))
    if checked.problem is not None:
        log.info("zoom connect refused", doctor_id=checked.doctor_id, outcome="state_rejected",
                 reason=checked.problem)
        return page(STATE_REJECTED, clear_cookie=True)
    assert checked.doctor_id is not None and checked.code_verifier is not None
    structlog.contextvars.bind_contextvars(clinic_id=clinic_of(checked.doctor_id))
    app = _clinic_app(svc, checked.doctor_id)
    if app is None:
        log.info("zoom connect refused", doctor_id=checked.doctor_id, outcome="not_configured")
        return page(NOT_CONFIGURED, clear_cookie=True)
    if error or not code:
        log.info("zoom connect refused", doctor_id=checked.doctor_id, outcome="denied",
                 reason=error[:40] or "no code")
        return page(DENIED, clear_cookie=True)
    result = _exchange_and_store(svc, app, checked.doctor_id, code, checked.code_verifier)
    return page(result, clear_cookie=True)


def _exchange_and_store(svc: WebServices, app: ZoomApp, doctor_id: str, code: str, verifier: str) -> Page:
    s = svc.settings
    assert s.public_url
    try:
        grant = request_token(
            s.zoom_oauth_url,
            client_id=app.client_id,
            client_secret=app.client_secret,
            form={"grant_type": "authorization_code", "code": code,
                  "redirect_uri": connect_links.callback_url(s.public_url), "code_verifier": verifier},
            timeout=s.zoom_timeout_seconds,
        )
    except ZoomGrantRevoked:
        log.info("zoom connect refused", doctor_id=doctor_id, outcome="code_rejected")
        return CODE_REJECTED
    except ZoomAuthError as exc:
        log.error("zoom refused the OAuth app's credentials", doctor_id=doctor_id, http_status=exc.status)
        return ZOOM_REFUSED_APP
    except ZoomError as exc:
        log.warning("zoom connect failed", doctor_id=doctor_id, error_type=type(exc).__name__)
        return ZOOM_UNAVAILABLE
    if not grant.refresh_token:
        log.warning("zoom connect failed", doctor_id=doctor_id, error_type="no refresh_token")
        return ZOOM_UNAVAILABLE
    with svc.database.session() as session:
        version = zoom_tokens.connect(session, doctor_id, zoom_tokens.NewGrant(
            grant.access_token, grant.refresh_token, grant.expires_in, grant.scope))
        resumed = zoom_tokens.unpark_after_reconnect(session, doctor_id)
    TOKEN_REFRESHES.labels(kind="user", outcome="connected").inc()
    for appointment_id in resumed:
        try:
            svc.enqueue("sync_meeting", appointment_id)
        except Exception as exc:  # noqa: BLE001  (the reconciler queues it anyway; the page must not fail)
            log.warning("could not queue a resumed appointment", appointment_id=appointment_id,
                        error_type=type(exc).__name__)
    log.info("zoom connected", doctor_id=doctor_id, version=version, resumed=len(resumed), outcome="connected")
    return CONNECTED
