"""``/healthz`` (the process answers), ``/readyz`` (the store and Redis answer), ``/metrics``.

``/metrics`` is this web process's Prometheus metrics plus the cluster-wide gauges the
scheduler measured (queue depth, dead letters, outbox pending; see ``telemed.gauges``).
Labels carry no patient data; still, expose it only to your monitoring network.
"""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.concurrency import run_in_threadpool

from telemed import gauges
from web.deps import services
from web.services import WebServices

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


@router.get("/readyz", summary="The store and Redis answer (503 otherwise)")
async def readyz(svc: WebServices = Depends(services)) -> JSONResponse:
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


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics_endpoint(svc: WebServices = Depends(services)) -> Response:
    return Response(await run_in_threadpool(_render, svc), media_type=CONTENT_TYPE_LATEST)
