"""``/admin``: the page where a clinic's admin works, scoped to their clinic.

Sign in with an admin API key (its clinic is the session's); then the appointments (a
list by start time, search, paging, each one's whole story), the doctors and their Zoom
connection, and what went wrong (failures and dead letters). Server-rendered, no
JavaScript. GET pages render from the store and Redis; every POST (sign in, sign out,
search, retry a dead letter, make a reconnect link) checks the CSRF token first. Ids are
the clinic's own everywhere, in URLs too; another clinic's id answers exactly like a
missing one (404, or "no longer exists" for a dead letter).
"""

from __future__ import annotations

import redis
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from telemed.store import api_keys, ownership
from telemed.web.admin import appointments, base, doctors, problems
from telemed.web.admin import session as auth
from telemed.web.deps import services
from telemed.web.services import WebServices

router = APIRouter(prefix="/admin", tags=["admin"], include_in_schema=False)
HOME = "/admin/appointments"


@router.get("", response_class=HTMLResponse)
def home(request: Request, svc: WebServices = Depends(services)) -> Response:
    return base.redirect(HOME) if base.signed_in(request, svc) else base.to_login()


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, svc: WebServices = Depends(services)) -> Response:
    return _login_page(request, svc)


def _login_page(request: Request, svc: WebServices, error: str | None = None, status: int = 401) -> Response:
    nonce = auth.new_nonce()
    response = base.page("login.html.j2", status=status if error else 200, error=error,
                         csrf=auth.csrf_token(svc.settings.fernet_keys, "login", nonce))
    response.set_cookie(auth.LOGIN_COOKIE, nonce, max_age=900, httponly=True, samesite="strict",
                        secure=base.secure(request, svc), path="/admin")
    return response


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, api_key: str = Form(""), csrf: str = Form(""),
          svc: WebServices = Depends(services)) -> Response:
    keys = svc.settings.fernet_keys
    if not auth.csrf_ok(keys, "login", request.cookies.get(auth.LOGIN_COOKIE), csrf):
        return _login_page(request, svc, error=base.NOTICES["csrf"])
    with svc.database.session() as s:
        who = api_keys.authenticate(s, api_key)
        standing = ownership.key_standing(s, who.key_prefix) if who is not None and who.key_prefix else None
    if who is None or who.role != "admin" or who.key_prefix is None or standing is None or not standing.active:
        base.log.warning("admin sign-in refused", outcome="refused")
        return _login_page(request, svc, error="That is not an active admin API key.")
    cookie, session = auth.make_session(keys, who.key_prefix, standing.clinic_id)
    try:
        auth.remember(svc.redis, svc.settings.redis_namespace, session)
    except redis.RedisError as exc:
        base.log.warning("admin sign-in failed: Redis does not answer", error_type=type(exc).__name__)
        return _login_page(request, svc, error="Sign-in is unavailable: Redis does not answer.", status=503)
    response = base.redirect(HOME)
    response.set_cookie(auth.SESSION_COOKIE, cookie, max_age=auth.SESSION_MAX_AGE, httponly=True,
                        samesite="strict", secure=base.secure(request, svc), path="/admin")
    response.delete_cookie(auth.LOGIN_COOKIE, path="/admin")
    base.log.info("admin signed in", outcome="signed_in", clinic_id=standing.clinic_id)
    return response


@router.post("/logout")
def logout(request: Request, csrf: str = Form(""), svc: WebServices = Depends(services)) -> Response:
    admin = base.signed_in(request, svc)
    if admin is not None and base.csrf_ok(svc, admin, csrf):
        # Ends the session on the server: the browser deleting its cookie is only a courtesy.
        try:
            auth.forget(svc.redis, svc.settings.redis_namespace, admin.session)
        except redis.RedisError as exc:
            base.log.warning("admin sign-out failed: Redis does not answer", error_type=type(exc).__name__)
            return _login_page(request, svc, status=503,
                               error="Sign-out did not reach Redis; sign out again when it answers.")
        base.log.info("admin signed out", outcome="signed_out", clinic_id=admin.clinic_id)
        response = base.to_login()
        response.delete_cookie(auth.SESSION_COOKIE, path="/admin")
        return response
    return base.to_login()


router.include_router(appointments.router)
router.include_router(doctors.router)
router.include_router(problems.router)
