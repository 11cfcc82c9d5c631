"""``POST /v1/events``: a booking system's signed event in, committed to the inbox.

The order of checks is the contract (docs/ingress.md): size (413, before anything is parsed),
signature and clock window (401: with the default clinic's TELEMED_INGRESS_SECRET, or the
key ``X-Telemed-Key-Id`` names), the signer's clinic suspended (403), strict JSON (400,
``events.strict_json``), an event naming another clinic (403, ``web.ingress_signer``),
the v1 contract (422), then the store and the queue (503 when either is down, with
nothing half-written). A 202 means the event is committed to the signer's clinic;
``status`` says whether it was new or a repeat (a resend of the same signed request is a
repeat too).
"""

from __future__ import annotations

from typing import Any, Literal

import redis
import sqlalchemy.exc
import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from telemed.events import InvalidEvent, signing, strict_json
from telemed.events.publish import PublishResult
from telemed.events.schema import event_json_schema
from telemed.web import metrics
from telemed.web.body import BodyTooLarge, read_limited
from telemed.web.deps import services
from telemed.web.ingress_signer import KEY_ID_HEADER, Rejected, authenticate, note_use, refuse_other_clinic
from telemed.web.services import WebServices

log = structlog.get_logger("telemed.web.ingress")
router = APIRouter(tags=["events"])
SOURCE = "http"


class Accepted(BaseModel):
    event_id: str
    status: Literal["accepted", "duplicate"]


class FieldErrorModel(BaseModel):
    loc: list[str | int]
    msg: str


class Invalid(BaseModel):
    errors: list[FieldErrorModel]


class Problem(BaseModel):
    detail: str


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """The event schema with its ``$defs`` inlined, so it stands alone inside OpenAPI."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node and node["$ref"].startswith("#/$defs/"):
                return walk(defs[node["$ref"].removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items() if k not in {"$defs", "$schema", "$id", "discriminator"}}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    return walk(schema)


_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "description": "One event of contract v1, sent as the exact bytes that were signed.",
        "content": {"application/json": {"schema": _inline(event_json_schema())}},
    },
    "parameters": [
        {"name": KEY_ID_HEADER, "in": "header", "required": False,
         "schema": {"type": "string", "pattern": "^ck_[0-9a-f]{16}$"},
         "description": "The clinic's ingress key that signed the request (`telemed clinics ingress-key add`); "
                        "the event goes to that key's clinic. Without it: the default clinic, signed with "
                        "TELEMED_INGRESS_SECRET."},
        {"name": signing.TIMESTAMP_HEADER, "in": "header", "required": True,
         "schema": {"type": "string", "pattern": r"^\d+$"}, "description": "Unix seconds when signed."},
        {"name": signing.SIGNATURE_HEADER, "in": "header", "required": True,
         "schema": {"type": "string", "pattern": "^v1=[0-9a-f]{64}$"},
         "description": 'v1=<hex HMAC-SHA256(secret, "v1:" + timestamp + ":" + raw body)>, the secret being '
                        "the key's (X-Telemed-Key-Id) or else TELEMED_INGRESS_SECRET"},
    ],
}


@router.post(
    "/v1/events",
    status_code=202,
    summary="Publish one appointment event",
    response_model=Accepted,
    openapi_extra=_REQUEST_BODY,
    responses={
        202: {"description": "Committed to the store: `accepted` when new, `duplicate` when that event_id "
              "was accepted before (a resend of the same signed request after a lost answer included)."},
        400: {"model": Problem, "description": "The body is not one strict JSON object: bad syntax or "
              f"encoding, a key given twice, an integer of over {strict_json.MAX_INTEGER_DIGITS} digits, "
              "NaN or Infinity, or another top level (a string holding JSON too)."},
        401: {"model": Problem, "description": "Missing or bad signature, or a timestamp outside the window "
              "(TELEMED_INGRESS_TOLERANCE_SECONDS, 300 s by default); an unknown or retired key id is answered "
              "the same. A resend of an accepted request is not refused: it is a 202 duplicate."},
        403: {"model": Problem, "description": "The key's clinic is suspended, or the event's "
              "`appointment.clinic.id` names another clinic of this deployment than the key's (recorded, "
              "see `telemed clinics refusals`)."},
        413: {"model": Problem, "description": "The body is over the size limit (64 KiB)."},
        422: {"model": Invalid, "description": "The event breaks contract v1; each bad field is listed."},
        503: {"model": Problem, "description": "The store or the queue is down; nothing was written. Retry. "
              "Also: no key id was sent and TELEMED_INGRESS_SECRET is not set."},
    },
)
async def post_event(request: Request, svc: WebServices = Depends(services)) -> JSONResponse:
    settings = svc.settings
    key_id = request.headers.get(KEY_ID_HEADER)
    try:
        if key_id is None and settings.ingress_secret is None:
            raise Rejected(503, "not_configured", "event ingress is not configured (TELEMED_INGRESS_SECRET)")
        try:
            body = await read_limited(request, settings.ingress_max_body_bytes)
        except BodyTooLarge as exc:
            raise Rejected(413, "too_large", f"body is larger than {exc.limit} bytes") from None
        result = await run_in_threadpool(
            _accept, svc, body, key_id, request.headers.get(signing.TIMESTAMP_HEADER),
            request.headers.get(signing.SIGNATURE_HEADER),
        )
    except Rejected as rejected:
        metrics.EVENTS_REJECTED.labels(source=SOURCE, reason=rejected.reason).inc()
        log.warning("event rejected", status=rejected.status, reason=rejected.reason)
        return JSONResponse({"detail": rejected.detail}, status_code=rejected.status)
    except InvalidEvent as exc:
        metrics.EVENTS_REJECTED.labels(source=SOURCE, reason="invalid").inc()
        log.warning("event rejected", status=422, reason="invalid", fields=[e["loc"] for e in exc.errors])
        return JSONResponse({"errors": exc.errors}, status_code=422)
    counter = metrics.EVENTS_ACCEPTED if result.status == "accepted" else metrics.EVENTS_DUPLICATE
    counter.labels(source=SOURCE).inc()
    return JSONResponse({"event_id": result.event_id, "status": result.status}, status_code=202)


def _accept(svc: WebServices, body: bytes, key_id: str | None, timestamp: str | None,
            signature: str | None) -> PublishResult:
    """Everything after the body is read (blocking: store and Redis), in a worker thread.

    A resend of the very same signed bytes inside the window (its 202 was lost on the way
    back) is processed like any request: its ``event_id`` makes it a ``duplicate``. Marking
    signatures as spent would answer it 401, an authentication failure for an accepted booking.
    """
    try:
        signer = authenticate(svc, key_id, timestamp, signature, body)
        note_use(svc, signer)
        try:
            event = strict_json.loads_object(body)
        except strict_json.RefusedJSON as exc:
            raise Rejected(400, "not_json", f"body is refused: {exc}") from None
        except strict_json.InvalidJSON as exc:
            raise Rejected(400, "not_json", f"body is not valid JSON: {exc}") from None
        refuse_other_clinic(svc, signer, event)
        return svc.publisher.publish(event, signer.clinic_id)
    except InvalidEvent:
        raise
    except (redis.RedisError, ConnectionError, TimeoutError, sqlalchemy.exc.OperationalError,
            sqlalchemy.exc.InterfaceError, sqlalchemy.exc.DatabaseError) as exc:
        log.error("event not accepted: a backend is down", error_type=type(exc).__name__)
        raise Rejected(503, "unavailable", "the store or the queue is unavailable; retry later") from None
