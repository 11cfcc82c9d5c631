"""FastAPI dependencies: the injected services and the caller's principal."""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request, status

from telemed.foundation.tenancy import UnknownClinic
from telemed.store import api_keys
from telemed.store.api_keys import Principal
from telemed.web.services import WebServices


def services(request: Request) -> WebServices:
    return request.app.state.services  # type: ignore[no-any-return]


def presented_key(request: Request) -> str | None:
    """The credential in ``Authorization: Bearer <key>`` (or ``X-API-Key``), if any."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("x-api-key")


def principal(request: Request, svc: WebServices = Depends(services)) -> Principal:
    """The caller, from ``Authorization: Bearer <key>`` or ``X-API-Key``; 401 otherwise
    (a deleted clinic's keys too)."""
    presented = presented_key(request)
    if not presented:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "an API key is required",
                            headers={"WWW-Authenticate": "Bearer"})
    with svc.database.session() as session:
        found = api_keys.authenticate(session, presented)
    if found is not None:
        try:
            svc.clinics.profile(found.clinic_id)
        except UnknownClinic:
            found = None
    if found is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown or revoked API key",
                            headers={"WWW-Authenticate": "Bearer"})
    return found


def require_admin(who: Principal = Depends(principal)) -> Principal:
    if who.role != "admin":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin only")
    return who
