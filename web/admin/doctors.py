"""The clinic's doctors and their Zoom connection; a reconnect link for one of them.

The link is minted on request for one doctor of the admin's clinic and never stored; a
doctor id of another clinic is a 404 exactly like a missing one.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from telemed.foundation import connect_links
from telemed.foundation.shown_ids import key_of
from telemed.store import dashboard
from telemed.web.admin import base
from telemed.web.deps import services
from telemed.web.services import WebServices

router = APIRouter()
SECTION = "doctors"


@router.get("/doctors", response_class=HTMLResponse)
def doctors(request: Request, svc: WebServices = Depends(services), done: str | None = None) -> Response:
    admin = base.signed_in(request, svc)
    if admin is None:
        return base.to_login()
    with svc.database.session() as s:
        rows = dashboard.doctors(s, admin.clinic_id)
    return base.page("doctors.html.j2", doctors=rows, can_link=bool(svc.settings.public_url),
                     notice=base.NOTICES.get(done or ""),
                     limit=dashboard.MAX_DOCTORS, **admin.shell(SECTION))


@router.post("/doctors/{doctor_id:path}/connect-link", response_class=HTMLResponse)  # ":path": see appointments
def connect_link(doctor_id: str, request: Request, csrf: str = Form(""),
                 svc: WebServices = Depends(services)) -> Response:
    admin = base.signed_in(request, svc)
    if admin is None:
        return base.to_login()
    if not base.csrf_ok(svc, admin, csrf):
        return base.redirect("/admin/doctors?done=csrf")
    key = key_of(admin.clinic_id, doctor_id)
    with svc.database.session() as s:
        known = dashboard.doctor_key_in(s, admin.clinic_id, key)
    if not known or key is None:
        return base.not_found(admin, SECTION, "doctor")
    settings = svc.settings
    link = connect_links.fresh_connect_link(settings.fernet_keys, settings.public_url, key,
                                            timedelta(seconds=settings.connect_link_ttl_seconds))
    base.log.info("reconnect link made on the admin page", doctor_id=key, clinic_id=admin.clinic_id)
    return base.page("link.html.j2", doctor_id=doctor_id, link=link,
                     days=round(settings.connect_link_ttl_seconds / 86400, 1), **admin.shell(SECTION))
