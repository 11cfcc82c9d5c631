"""The FastAPI application. Each concern is a router in a module of its own."""

from __future__ import annotations

import importlib

from fastapi import FastAPI

from telemed.web.services import WebServices

ROUTER_MODULES = (
    "telemed.web.health",  # /healthz, /readyz, /metrics
    "telemed.web.ingress",  # POST /v1/events
    "telemed.web.zoom_webhook",  # POST /zoom/webhook
    "telemed.web.oauth",  # /oauth/zoom/connect, /oauth/zoom/callback
    "telemed.web.start_links",  # /start/{token}
    "telemed.web.join_links",  # /join/{token}
    "telemed.web.access_api",  # /v1/appointments/...
    "telemed.web.admin",  # /admin
)


def create_app(services: WebServices) -> FastAPI:
    app = FastAPI(
        title="telemed",
        version="1",
        description="Appointment events in, secure Zoom meetings and role-filtered notifications out.",
    )
    app.state.services = services
    for name in ROUTER_MODULES:
        module = importlib.import_module(name)
        router = getattr(module, "router", None)
        if router is not None:
            app.include_router(router)
    return app
