"""``/admin``: a small server-rendered page for the people who run telemed.

GET pages render from the store and Redis; every POST (sign in, sign out, retry a dead
letter, make a reconnect link) checks the CSRF token first. Nothing secret is shown but a
reconnect link, minted on request for one doctor and never stored.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import redis
import structlog
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from telemed.foundation import connect_links, dead_letters
from telemed.foundation.tenancy import DEFAULT_CLINIC
from telemed.store import api_keys, appointments, dashboard, status_view
from telemed.web.admin import session as auth
from telemed.web.deps import services
from telemed.web.services import WebServices

log = structlog.get_logger("telemed.web.admin")
router = APIRouter(prefix="/admin", tags=["admin"], include_in_schema=False)
_templates = Environment(loader=PackageLoader("telemed.web.admin", "templates"),
                         autoescape=select_autoescape(["html", "j2"]))
HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
}
NOTICES = {"retried": "The message was sent to its queue again.", "gone": "That dead letter no longer exists.",
           "csrf": "The form had expired; please try again."}


def _page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_templates.get_template(template).render(**context), status_code=status, headers=HEADERS)


def _secure(request: Request, svc: WebServices) -> bool:
    return request.url.scheme == "https" or bool(svc.settings.public_url and svc.settings.public_url.startswith("https"))


def _admin(request: Request, svc: WebServices) -> auth.AdminSession | None:
    """The signed-in admin, if the cookie is valid and its key is still an active admin key."""
    found = auth.read_session(svc.settings.fernet_keys, request.cookies.get(auth.SESSION_COOKIE))
    if found is None:
        return None
    try:
        if not auth.on_record(svc.redis, svc.settings.redis_namespace, found):
            return None  # signed out (a saved copy of the cookie), or lapsed
    except redis.RedisError as exc:  # fail closed: a session we cannot check is no session
        log.warning("admin session check failed: Redis does not answer", error_type=type(exc).__name__)
        return None
    with svc.database.session() as s:
        key = next((k for k in api_keys.list_keys(s) if k.prefix == found.key_prefix), None)
    # The page shows every clinic's data: only the default clinic's admins, until it is
    # scoped to the signed-in admin's clinic.
    if key is None or key.revoked_at is not None or key.role != "admin" or key.clinic_id != DEFAULT_CLINIC:
        return None
    return found


def _to_login() -> RedirectResponse:
    return RedirectResponse("/admin/login", status_code=303, headers=HEADERS)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, svc: WebServices = Depends(services)) -> Response:
    return _login_page(request, svc)


def _login_page(request: Request, svc: WebServices, error: str | None = None, status: int = 401) -> Response:
    nonce = auth.new_nonce()
    response = _page("login.html.j2", status=status if error else 200, error=error,
                     csrf=auth.csrf_token(svc.settings.fernet_keys, "login", nonce))
    response.set_cookie(auth.LOGIN_COOKIE, nonce, max_age=900, httponly=True, samesite="strict",
                        secure=_secure(request, svc), path="/admin")
    return response


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, api_key: str = Form(""), csrf: str = Form(""),
          svc: WebServices = Depends(services)) -> Response:
    keys = svc.settings.fernet_keys
    if not auth.csrf_ok(keys, "login", request.cookies.get(auth.LOGIN_COOKIE), csrf):
        return _login_page(request, svc, error=NOTICES["csrf"])
    with svc.database.session() as s:
        who = api_keys.authenticate(s, api_key)
    if who is None or who.role != "admin" or who.key_prefix is None or who.clinic_id != DEFAULT_CLINIC:
        log.warning("admin sign-in refused", outcome="refused")
        return _login_page(request, svc, error="That is not an active admin API key.")
    cookie, session = auth.make_session(keys, who.key_prefix)
    try:
        auth.remember(svc.redis, svc.settings.redis_namespace, session)
    except redis.RedisError as exc:
        log.warning("admin sign-in failed: Redis does not answer", error_type=type(exc).__name__)
        return _login_page(request, svc, error="Sign-in is unavailable: Redis does not answer.", status=503)
    response = RedirectResponse("/admin", status_code=303, headers=HEADERS)
    response.set_cookie(auth.SESSION_COOKIE, cookie, max_age=auth.SESSION_MAX_AGE, httponly=True,
                        samesite="strict", secure=_secure(request, svc), path="/admin")
    response.delete_cookie(auth.LOGIN_COOKIE, path="/admin")
    log.info("admin signed in", outcome="signed_in")
    return response


@router.post("/logout")
def logout(request: Request, csrf: str = Form(""), svc: WebServices = Depends(services)) -> Response:
    admin = _admin(request, svc)
    if admin is not None and auth.csrf_ok(svc.settings.fernet_keys, "session", admin.nonce, csrf):
        # Ends the session on the server: the browser deleting its cookie is only a courtesy.
        try:
            auth.forget(svc.redis, svc.settings.redis_namespace, admin)
        except redis.RedisError as exc:
            log.warning("admin sign-out failed: Redis does not answer", error_type=type(exc).__name__)
            return _login_page(request, svc, status=503,
                               error="Sign-out did not reach Redis; sign out again when it answers.")
        log.info("admin signed out", outcome="signed_out")
        response = _to_login()
        response.delete_cookie(auth.SESSION_COOKIE, path="/admin")
        return response
    return _to_login()


@router.get("", response_class=HTMLResponse)
async def overview(request: Request, svc: WebServices = Depends(services), done: str | None = None) -> Response:
    admin = await run_in_threadpool(_admin, request, svc)
    if admin is None:
        return _to_login()
    data = await run_in_threadpool(_overview_data, svc)
    return _page("overview.html.j2", notice=NOTICES.get(done or ""),
                 csrf=auth.csrf_token(svc.settings.fernet_keys, "session", admin.nonce), **data)


def _overview_data(svc: WebServices) -> dict[str, Any]:
    with svc.database.session() as s:
        data: dict[str, Any] = {"appointments": status_view.recent_appointment_statuses(s), "doctors": dashboard.doctors(s),
                                "failures": dashboard.recent_failures(s)}
    try:
        data["dead"] = dead_letters.list_dead(svc.redis, svc.settings.redis_namespace, limit=200)
        data["redis_error"] = None
    except Exception as exc:  # noqa: BLE001  (Redis down: the rest of the page still helps)
        data["dead"], data["redis_error"] = [], type(exc).__name__
    data["can_link"] = bool(svc.settings.public_url)
    return data


@router.post("/dead-letters/{message_id}/retry")
def retry_dead_letter(message_id: str, request: Request, csrf: str = Form(""),
                      svc: WebServices = Depends(services)) -> Response:
    admin = _admin(request, svc)
    if admin is None:
        return _to_login()
    if not auth.csrf_ok(svc.settings.fernet_keys, "session", admin.nonce, csrf):
        return RedirectResponse("/admin?done=csrf", status_code=303, headers=HEADERS)
    namespace = svc.settings.redis_namespace
    letter = dead_letters.get_dead(svc.redis, namespace, message_id)
    if letter is None:
        return RedirectResponse("/admin?done=gone", status_code=303, headers=HEADERS)
    dead_letters.retry(svc.redis, namespace, letter, lambda dead: svc.enqueue(dead.actor, *dead.args))
    log.info("dead letter retried from the admin page", message_id=message_id, actor=letter.actor)
    return RedirectResponse("/admin?done=retried", status_code=303, headers=HEADERS)


@router.post("/doctors/{doctor_id}/connect-link", response_class=HTMLResponse)
def connect_link(doctor_id: str, request: Request, csrf: str = Form(""),
                 svc: WebServices = Depends(services)) -> Response:
    admin = _admin(request, svc)
    if admin is None:
        return _to_login()
    if not auth.csrf_ok(svc.settings.fernet_keys, "session", admin.nonce, csrf):
        return RedirectResponse("/admin?done=csrf", status_code=303, headers=HEADERS)
    settings = svc.settings
    with svc.database.session() as s:
        known = appointments.get_doctor(s, doctor_id) is not None
    link = None
    if known:
        link = connect_links.fresh_connect_link(settings.fernet_keys, settings.public_url, doctor_id,
                                                timedelta(seconds=settings.connect_link_ttl_seconds))
    log.info("reconnect link made on the admin page", doctor_id=doctor_id)
    return _page("link.html.j2", doctor_id=doctor_id, link=link,
                 days=round(settings.connect_link_ttl_seconds / 86400, 1))
