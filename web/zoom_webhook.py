"""``POST /zoom/webhook/{clinic}``: Zoom's notifications, verified, stored, then handled by a worker.

Each clinic's Zoom app signs with its own secret token, so each clinic has its own
endpoint, verified with that clinic's ``zoom_webhook_secret``; ``/zoom/webhook`` is the
default clinic's (TELEMED_ZOOM_WEBHOOK_SECRET_TOKEN), as before clinics. The receipt
remembers the clinic, and the worker lets it touch that clinic's meetings only: a clinic
cannot move another clinic's appointment by naming its meeting id.

Zoom wants an answer within 3 seconds and retries otherwise, so this endpoint only checks
the signature, stores the notification (deduplicated on its exact bytes, so Zoom's
retries land on one row) and queues ``process_zoom_webhook(receipt_id)``. The store is
the truth here too: if queueing fails, the reconciler picks the pending receipt up.

Answers: 200 (challenge answered, accepted, duplicate or ignored: an event we do not use,
or a meeting id outside int64, which no meeting of ours has), 400 (not one strict JSON
object, see ``events.strict_json``, or a handled event without what it needs), 401
(signature), 404 (no such clinic), 413 (too large), 503 (the store is down, or the clinic
has no secret token configured: Zoom retries). There are no replay marks: a resend, even byte for byte with the same
headers, lands on the stored receipt and is answered ``duplicate``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy.exc
import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from telemed.events import strict_json
from telemed.events.signing import SignatureError
from telemed.foundation.tenancy import DEFAULT_CLINIC, InvalidClinicId, UnknownClinic, check_clinic_id
from telemed.store import operations
from telemed.web import metrics
from telemed.web.body import BodyTooLarge, read_limited
from telemed.web.deps import services
from telemed.web.services import WebServices
from telemed.zoom import webhooks

log = structlog.get_logger("telemed.web.zoom_webhook")
router = APIRouter(tags=["zoom"])
MAX_BODY_BYTES = 256 * 1024
SOURCE = "zoom"
ACTOR = "process_zoom_webhook"


def _answer(status: int, body: dict[str, Any], reason: str | None = None) -> JSONResponse:
    if reason is not None:
        metrics.EVENTS_REJECTED.labels(source=SOURCE, reason=reason).inc()
        log.warning("zoom webhook rejected", status=status, reason=reason)
    return JSONResponse(body, status_code=status)


@router.post("/zoom/webhook", summary="Zoom event notifications for the default clinic (signed with its app's "
                                     "secret token)")
async def zoom_webhook(request: Request, svc: WebServices = Depends(services)) -> JSONResponse:
    return await _receive(request, svc, DEFAULT_CLINIC)


@router.post("/zoom/webhook/{clinic_id}", summary="Zoom event notifications for one clinic (signed with its "
                                                  "Zoom app's secret token)")
async def clinic_zoom_webhook(clinic_id: str, request: Request, svc: WebServices = Depends(services)) -> JSONResponse:
    try:
        check_clinic_id(clinic_id)
    except InvalidClinicId:
        return _answer(404, {"detail": "no such clinic"}, "unknown_clinic")
    return await _receive(request, svc, clinic_id)


async def _receive(request: Request, svc: WebServices, clinic_id: str) -> JSONResponse:
    settings = svc.settings
    structlog.contextvars.bind_contextvars(clinic_id=clinic_id)
    try:
        profile = await run_in_threadpool(svc.profile, clinic_id)
    except UnknownClinic:
        return _answer(404, {"detail": "no such clinic"}, "unknown_clinic")
    if not profile.zoom_webhook_secret:
        what = "TELEMED_ZOOM_WEBHOOK_SECRET_TOKEN" if clinic_id == DEFAULT_CLINIC else "the clinic's Zoom webhook secret"
        return _answer(503, {"detail": f"Zoom webhooks are not configured ({what})"}, "not_configured")
    secret = profile.zoom_webhook_secret
    try:
        body = await read_limited(request, MAX_BODY_BYTES)
    except BodyTooLarge as exc:
        return _answer(413, {"detail": f"body is larger than {exc.limit} bytes"}, "too_large")
    try:
        webhooks.verify_zoom(secret, request.headers.get(webhooks.TIMESTAMP_HEADER),
                             request.headers.get(webhooks.SIGNATURE_HEADER), body,
                             tolerance_seconds=settings.ingress_tolerance_seconds)
    except SignatureError as exc:
        return _answer(401, {"detail": str(exc)}, f"signature_{exc.reason}")
    try:
        data = strict_json.loads_object(body)
    except strict_json.RefusedJSON as exc:
        return _answer(400, {"detail": f"body is refused: {exc}"}, "not_json")
    except strict_json.InvalidJSON as exc:
        return _answer(400, {"detail": f"body is not valid JSON: {exc}"}, "not_json")

    if data.get("event") == webhooks.URL_VALIDATION:
        plain = (data.get("payload") or {}).get("plainToken") if isinstance(data.get("payload"), dict) else None
        if not isinstance(plain, str) or not 0 < len(plain) <= 256:
            return _answer(400, {"detail": "payload.plainToken: is required"}, "invalid")
        return JSONResponse({"plainToken": plain, "encryptedToken": webhooks.encrypted_token(secret, plain)})
    try:
        notification = webhooks.read_notification(data)
    except webhooks.BadNotification as exc:
        return _answer(400, {"detail": str(exc)}, "invalid")
    except webhooks.ForeignMeeting as exc:
        # 200, not 400: Zoom retries any other answer, and the same bytes can never name a
        # meeting of ours. Logged so an operator sees it.
        log.warning("zoom webhook ignored", reason=str(exc), zoom_event=data.get("event"))
        return JSONResponse({"status": "ignored"})
    if notification.event not in webhooks.HANDLED:
        return JSONResponse({"status": "ignored"})

    try:
        receipt_id, is_new = await run_in_threadpool(_store, svc, body, notification, clinic_id)
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, sqlalchemy.exc.DatabaseError) as exc:
        log.error("zoom webhook not stored: the store is down", error_type=type(exc).__name__)
        return _answer(503, {"detail": "the store is unavailable; retry later"}, "unavailable")
    if not is_new:
        metrics.EVENTS_DUPLICATE.labels(source=SOURCE).inc()
        return JSONResponse({"status": "duplicate"})
    metrics.EVENTS_ACCEPTED.labels(source=SOURCE).inc()
    await run_in_threadpool(_enqueue, svc, receipt_id, clinic_id)
    log.info("zoom webhook accepted", zoom_event=notification.event, receipt_id=receipt_id)
    return JSONResponse({"status": "accepted"})


def _store(svc: WebServices, body: bytes, notification: webhooks.Notification, clinic_id: str) -> tuple[int, bool]:
    with svc.database.session() as session:
        receipt, is_new = operations.record_receipt(
            session, raw_body=body, event=notification.event, payload=body.decode("utf-8"),
            zoom_meeting_id=notification.zoom_meeting_id, zoom_user_id=notification.zoom_user_id,
            clinic_id=clinic_id,
        )
        assert receipt.id is not None
        return receipt.id, is_new


def _enqueue(svc: WebServices, receipt_id: int, clinic_id: str) -> None:
    try:
        svc.enqueue(ACTOR, receipt_id, clinic=clinic_id)  # the clinic's work: through its gate
    except Exception as exc:  # noqa: BLE001  (stored already: the reconciler queues it later)
        log.warning("queueing the zoom webhook failed; the reconciler will pick it up",
                    receipt_id=receipt_id, error_type=type(exc).__name__)
