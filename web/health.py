"""``/healthz`` (the process answers), ``/readyz`` (the checks of ``telemed check``), ``/metrics``.

``/metrics`` is this web process's Prometheus metrics plus the cluster-wide gauges the
scheduler measured (queue depth, dead letters, outbox pending; see ``foundation.queue_gauges``).
Labels carry no patient data, but rejection reasons and queue depths are for operators,
not for anyone who finds the public listener: ``/metrics`` answers only a scraper that
presents TELEMED_METRICS_TOKEN as a bearer token (401 otherwise), and is not served at all
(404) while the token is unset.
"""

from __future__ import annotations

import hmac

import structlog
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.concurrency import run_in_threadpool

from telemed.foundation import queue_gauges as gauges
from telemed.web.deps import presented_key, services
from telemed.web.services import WebServices

log = structlog.get_logger("telemed.web.health")
router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The web process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _check_store(svc: WebServices) -> str:
    try:
        svc.database.ping()
    except Exception as exc:  # noqa: BLE001  (any failure means not ready; named in the answer)
        log.warning("readiness: store does not answer", error_type=type(exc).__name__)
        return f"down ({type(exc).__name__})"
    return "ok"


def _check_redis(svc: WebServices) -> str:
    try:
        svc.redis.ping()
    except Exception as exc:  # noqa: BLE001  (any failure means not ready; named in the answer)
        log.warning("readiness: Redis does not answer", error_type=type(exc).__name__)
        return f"down ({type(exc).__name__})"
    return "ok"


def _self_check(svc: WebServices) -> tuple[dict[str, str], bool]:
    """The deployment's checks (``telemed check``): each one's words, and whether every
    decisive one (store, Redis, migrations, clock) holds; Zoom and mail are reported only."""
    assert svc.self_check is not None
    findings = svc.self_check()
    for finding in findings:
        if not finding.ok:
            log.warning("readiness: check failed", check=finding.name, detail=finding.detail)
    return ({f.name: "ok" if f.ok and f.detail == "ok" else f.detail for f in findings},
            all(f.ok for f in findings if f.decisive))


@router.get("/readyz", summary="The store, Redis, the schema and the clocks are fine (503 otherwise); "
                               "Zoom and mail reported")
async def readyz(svc: WebServices = Depends(services)) -> JSONResponse:
    if svc.self_check is not None:
        checks, ready = await run_in_threadpool(_self_check, svc)
    else:
        checks = {"store": await run_in_threadpool(_check_store, svc),
                  "redis": await run_in_threadpool(_check_redis, svc)}
        ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ready" if ready else "unavailable", "checks": checks},
                        status_code=200 if ready else 503)


def _render(svc: WebServices) -> bytes:
    try:
        gauges.apply(gauges.load_snapshot(svc.redis, svc.settings.redis_namespace))
    except Exception as exc:  # noqa: BLE001  (Redis down: this process's own metrics still answer)
        log.warning("metrics: gauge snapshot unavailable", error_type=type(exc).__name__)
    return generate_latest(REGISTRY)


def metrics_refusal(presented: str | None, token: str | None) -> Response | None:
    """The answer for a scrape that may not see the metrics, or None when it may."""
    if token is None:
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    if presented is None or not hmac.compare_digest(presented.encode(), token.encode()):
        return JSONResponse({"detail": "a metrics token is required (TELEMED_METRICS_TOKEN)"}, status_code=401,
                            headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    return None


@router.get("/metrics", summary="Prometheus metrics (Authorization: Bearer TELEMED_METRICS_TOKEN)",
            response_class=Response, responses={401: {}, 404: {"description": "TELEMED_METRICS_TOKEN is unset"}})
async def metrics_endpoint(request: Request, svc: WebServices = Depends(services)) -> Response:
    token = svc.settings.metrics_token
    refusal = metrics_refusal(presented_key(request), token.get_secret_value() if token else None)
    if refusal is not None:
        return refusal
    return Response(await run_in_threadpool(_render, svc), media_type=CONTENT_TYPE_LATEST)
