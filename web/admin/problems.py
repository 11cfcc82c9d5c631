"""What went wrong in the clinic: recent failures, and dead letters with a Retry button.

Retrying checks that the dead letter is the clinic's (web.admin.letters): another
clinic's message id answers "no longer exists", exactly like a missing one.
"""

from __future__ import annotations

from typing import Any

import redis
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from telemed.foundation import dead_letters
from telemed.store import dashboard
from telemed.web.admin import base, letters
from telemed.web.deps import services
from telemed.web.services import WebServices

router = APIRouter()
SECTION = "problems"
HOME = "/admin/problems"


@router.get("/problems", response_class=HTMLResponse)
def problems(request: Request, svc: WebServices = Depends(services), done: str | None = None) -> Response:
    admin = base.signed_in(request, svc)
    if admin is None:
        return base.to_login()
    with svc.database.session() as s:
        data: dict[str, Any] = {"failures": dashboard.recent_failures(s, admin.clinic_id)}
    try:
        data["dead"] = letters.clinic_letters(svc.redis, svc.settings.redis_namespace, svc.database, admin.clinic_id)
        data["redis_error"] = None
    except redis.RedisError as exc:  # Redis down: the failures still help
        data["dead"], data["redis_error"] = [], type(exc).__name__
    return base.page("problems.html.j2", notice=base.NOTICES.get(done or ""), **data, **admin.shell(SECTION))


@router.post("/dead-letters/{message_id:path}/retry")  # ":path": see web.admin.appointments
def retry_dead_letter(message_id: str, request: Request, csrf: str = Form(""),
                      svc: WebServices = Depends(services)) -> Response:
    admin = base.signed_in(request, svc)
    if admin is None:
        return base.to_login()
    if not base.csrf_ok(svc, admin, csrf):
        return base.redirect(f"{HOME}?done=csrf")
    namespace = svc.settings.redis_namespace
    try:
        letter = letters.clinic_letter(svc.redis, namespace, svc.database, admin.clinic_id, message_id)
        if letter is None:
            return base.redirect(f"{HOME}?done=gone")
        dead_letters.retry(svc.redis, namespace, letter, lambda dead: svc.enqueue(dead.actor, *dead.args))
    except redis.RedisError as exc:
        base.log.warning("dead letter retry failed: Redis does not answer", error_type=type(exc).__name__)
        return base.redirect(f"{HOME}?done=redis")
    base.log.info("dead letter retried from the admin page", message_id=message_id, actor=letter.actor,
                  clinic_id=admin.clinic_id)
    return base.redirect(f"{HOME}?done=retried")
