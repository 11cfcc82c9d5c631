"""The clinic's appointments: the list (by start time, paged), the search, one appointment.

``GET /admin/appointments?when=upcoming|past|all&page=N[&search=<handle>]`` lists;
``POST /admin/appointments/search`` keeps the search server-side (web.admin.searches) and
redirects to the list with its handle; ``GET /admin/appointments/{id}`` shows one, by the
clinic's own id (another clinic's id is a 404 exactly like a missing one).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import redis
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from telemed.store import appointment_detail, appointment_list, patient_search
from telemed.store.appointment_list import Criteria, InvalidSearch
from telemed.web.admin import base, searches
from telemed.web.deps import services
from telemed.web.services import WebServices

router = APIRouter()
SECTION = "appointments"
MAX_PAGE = 1_000_000


def list_url(when: str, page: int = 1, search: str | None = None) -> str:
    query: dict[str, Any] = {"when": when, "page": page}
    if search:
        query["search"] = search
    return "/admin/appointments?" + urlencode(query)


def _page_number(raw: str) -> int | None:
    return int(raw) if raw.isdigit() and 0 < int(raw) <= MAX_PAGE else None


def _render(svc: WebServices, admin: base.Admin, *, when: str, page: int, search: Criteria,
            handle: str | None, notice: str | None = None, error: str | None = None, status: int = 200) -> Response:
    with svc.database.session() as s:
        listed = appointment_list.appointment_page(s, admin.clinic_id, now=datetime.now(UTC), when=when,
                                                   search=search, page=page)
    return base.page(
        "appointments.html.j2", status=status, listing=listed, search=search, handle=handle, notice=notice,
        error=error, whens=appointment_list.WHENS, list_url=list_url, **admin.shell(SECTION))


@router.get("/appointments", response_class=HTMLResponse)
def appointments(request: Request, svc: WebServices = Depends(services), when: str = appointment_list.UPCOMING,
                 page: str = "1", search: str | None = None, done: str | None = None) -> Response:
    admin = base.signed_in(request, svc)
    if admin is None:
        return base.to_login()
    if when not in appointment_list.WHENS:
        return base.bad_request(admin, SECTION, f"when: one of {', '.join(appointment_list.WHENS)}")
    number = _page_number(page)
    if number is None:
        return base.bad_request(admin, SECTION, f"page: a whole number from 1 to {MAX_PAGE}")
    criteria, notice = Criteria(), base.NOTICES.get(done or "")
    if search:
        try:
            found = searches.load(svc.redis, svc.settings.redis_namespace, base.cipher(svc), admin.session.nonce,
                                  search)
        except redis.RedisError as exc:
            base.log.warning("admin search unavailable: Redis does not answer", error_type=type(exc).__name__)
            return _render(svc, admin, when=when, page=number, search=criteria, handle=None, status=503,
                           error="Searching is unavailable: Redis does not answer. Showing all appointments.")
        if found is None:
            search, notice = None, base.NOTICES["expired"]
        else:
            criteria = found
    return _render(svc, admin, when=when, page=number, search=criteria, handle=search, notice=notice)


@router.post("/appointments/search", response_class=HTMLResponse)
def run_search(request: Request, csrf: str = Form(""), when: str = Form(appointment_list.ALL),
           appointment: str = Form(""), doctor: str = Form(""), patient: str = Form(""),
           svc: WebServices = Depends(services)) -> Response:
    admin = base.signed_in(request, svc)
    if admin is None:
        return base.to_login()
    if not base.csrf_ok(svc, admin, csrf):
        return base.redirect("/admin/appointments?done=csrf")
    if when not in appointment_list.WHENS:
        return base.bad_request(admin, SECTION, f"when: one of {', '.join(appointment_list.WHENS)}")
    try:
        criteria = appointment_list.criteria(appointment=appointment, doctor=doctor, patient=patient)
    except InvalidSearch as exc:
        return _render(svc, admin, when=when, page=1, search=Criteria(), handle=None, error=str(exc), status=400)
    if criteria.empty:
        return base.redirect(list_url(when))
    if criteria.patient:
        # Rows the blind index does not cover yet (from before it, or after a key was
        # dropped) are indexed now, so the search misses none of the clinic's patients.
        patient_search.reindex(svc.database, base.cipher(svc), clinic_id=admin.clinic_id)
    try:
        handle = searches.save(svc.redis, svc.settings.redis_namespace, base.cipher(svc), admin.session.nonce,
                               criteria)
    except redis.RedisError as exc:
        base.log.warning("admin search unavailable: Redis does not answer", error_type=type(exc).__name__)
        return _render(svc, admin, when=when, page=1, search=criteria, handle=None, status=503,
                       error="Searching is unavailable: Redis does not answer.")
    return base.redirect(list_url(when, 1, handle))


# ``:path``: an id holding an encoded "/" ("b%2FA-1") reaches this handler, which refuses
# it like any missing id, instead of falling through to the framework's own 404.
@router.get("/appointments/{appointment_id:path}", response_class=HTMLResponse)
def appointment(appointment_id: str, request: Request, svc: WebServices = Depends(services)) -> Response:
    admin = base.signed_in(request, svc)
    if admin is None:
        return base.to_login()
    with svc.database.session() as s:
        detail = appointment_detail.appointment_detail(s, admin.clinic_id, appointment_id)
    if detail is None:
        return base.not_found(admin, SECTION, "appointment")
    return base.page("appointment.html.j2", a=detail, **admin.shell(SECTION))
