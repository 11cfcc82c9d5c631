"""What every admin page shares: the templates, the headers, and who is signed in.

Every page and action starts with ``signed_in``: the session cookie must be valid and on
record in Redis, and its API key must still be an active admin key of the clinic the
session was made for. The clinic it returns bounds everything the page reads or does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis
import structlog
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from telemed.foundation.cipher import Cipher
from telemed.store import ownership
from telemed.web.admin import session as auth
from telemed.web.services import WebServices

log = structlog.get_logger("telemed.web.admin")
HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
}
NOTICES = {"retried": "The message was sent to its queue again.", "gone": "That dead letter no longer exists.",
           "csrf": "The form had expired; please try again.",
           "redis": "Redis does not answer; nothing was done. Please try again when it does.",
           "expired": "That search has expired (searches are kept for an hour); please search again."}


def _utc(moment: datetime | None, seconds: bool = False) -> str:
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _local(moment: datetime | None, zone: str) -> str:
    """The time where the appointment takes place (its own time zone)."""
    if moment is None:
        return ""
    try:
        return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
    except (ZoneInfoNotFoundError, ValueError):
        return ""


_templates = Environment(loader=PackageLoader("telemed.web.admin", "templates"),
                         autoescape=select_autoescape(["html", "j2"]))
_templates.filters["utc"] = _utc
_templates.filters["local"] = _local


def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_templates.get_template(template).render(**context), status_code=status, headers=HEADERS)


def redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers=HEADERS)


def to_login() -> RedirectResponse:
    return redirect("/admin/login")


def secure(request: Request, svc: WebServices) -> bool:
    public = svc.settings.public_url
    return request.url.scheme == "https" or bool(public and public.startswith("https"))


def cipher(svc: WebServices) -> Cipher:
    """The store's cipher (it encrypts what the page keeps in Redis, and keys the patient index)."""
    return svc.database.cipher or Cipher(svc.settings.fernet_keys)


@dataclass(frozen=True)
class Admin:
    """The signed-in admin: their session and the clinic it is bounded by."""

    session: auth.AdminSession
    clinic_name: str | None
    csrf: str

    @property
    def clinic_id(self) -> str:
        return self.session.clinic_id

    def shell(self, section: str) -> dict[str, Any]:
        """What the page's frame shows: the clinic, the sections, the sign-out form."""
        return {"clinic_id": self.clinic_id, "clinic_name": self.clinic_name, "csrf": self.csrf, "section": section}


def signed_in(request: Request, svc: WebServices) -> Admin | None:
    """The signed-in admin, if the cookie is valid, on record, and its key still an active
    admin key of the session's clinic."""
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
        standing = ownership.key_standing(s, found.key_prefix)
    if standing is None or not standing.active or standing.role != "admin" or standing.clinic_id != found.clinic_id:
        return None
    return Admin(found, standing.clinic_name, auth.csrf_token(svc.settings.fernet_keys, "session", found.nonce))


def csrf_ok(svc: WebServices, admin: Admin, presented: str) -> bool:
    return auth.csrf_ok(svc.settings.fernet_keys, "session", admin.session.nonce, presented)


def not_found(admin: Admin, section: str, what: str) -> HTMLResponse:
    """The one answer for what does not exist and for what belongs to another clinic."""
    return page("not_found.html.j2", status=404, what=what, **admin.shell(section))


def bad_request(admin: Admin, section: str, error: str) -> HTMLResponse:
    return page("bad_request.html.j2", status=400, error=error, **admin.shell(section))
