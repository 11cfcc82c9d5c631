"""The HTTP client for the handful of Zoom meeting endpoints telemed uses.

Every failure is raised as a :class:`~zoom.errors.ZoomError` decided by
``zoom.errors.classify_*``; the client retries nothing. The one repeat it makes is Zoom's
protocol, not a retry policy: "401, code 124" means the access token expired or was
revoked, and the answer to it is a fresh token and the same request, once (a second 124
is a ``ZoomAuthError``, permanent). When to try a failed call again belongs to the
worker: ``workers/policy/retries.py`` decides it for every failure, knowing Zoom's
Retry-After hint and the work's attempt limit.

An optional ``limiter`` hook is called with the endpoint's rate-limit category (Zoom's
labels: create and list are ``Medium``; get, update and delete ``Light``) before every
request, so a shared pacer (``zoom.ratelimit``) keeps all processes under the limit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests
import structlog

from telemed.foundation import tls
from telemed.foundation.urls import require_secure_url
from telemed.zoom.errors import (
    ZoomAuthError,
    ZoomNotFound,
    ZoomRateLimited,
    ZoomTransientError,
    classify_exception,
    classify_response,
)
from telemed.zoom.metrics import ZOOM_CALLS, ZOOM_RATE_LIMITED
from telemed.zoom.oauth import USER_AGENT
from telemed.zoom.tokens import TokenProvider

log = structlog.get_logger(__name__)

LIST_PAGE_SIZE = 300  # Zoom's maximum: fewer calls against the rate limit
_MAX_PAGES = 100  # a guard against a server that keeps handing out page tokens
MEDIUM = "Medium"
LIGHT = "Light"


def environment_session(url: str) -> requests.Session:
    """A TLS 1.2+ session (``foundation.tls``) that honours the proxy and CA-bundle variables,
    read once here.

    By default requests re-reads the whole environment on every call to find proxies,
    which cost more CPU than anything else in a Zoom call; the client only ever talks to
    one API host, so the answer cannot change between calls.
    """
    session = tls.secure_session()
    session.trust_env = False
    if not requests.utils.should_bypass_proxies(url, no_proxy=None):
        session.proxies.update(requests.utils.get_environ_proxies(url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    return session


class ZoomClient:
    def __init__(
        self,
        api_url: str,
        tokens: TokenProvider,
        timeout: float = 10,
        session: requests.Session | None = None,
        limiter: Callable[[str], object] | None = None,
    ) -> None:
        self._api_url = require_secure_url(api_url, what="the Zoom API URL")
        self._tokens = tokens
        self._limiter = limiter
        self._timeout = (float(timeout), float(timeout))  # (connect, read)
        self._session = session or environment_session(self._api_url)

    def __repr__(self) -> str:
        return f"ZoomClient(api_url={self._api_url!r})"

    def close(self) -> None:
        self._session.close()

    # Meetings ---------------------------------------------------------------------------

    def create_meeting(self, host: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /users/{host}/meetings``; the created meeting (holds start/join urls)."""
        response = self._call(
            "POST", f"/users/{_user(host)}/meetings", route="/users/{host}/meetings", json=body,
            category=MEDIUM,
        )
        return _json_object(response)

    def get_meeting(self, meeting_id: int) -> dict[str, Any]:
        """``GET /meetings/{id}``; carries a freshly minted ``start_url``."""
        response = self._call("GET", f"/meetings/{_meeting(meeting_id)}", route="/meetings/{id}")
        return _json_object(response)

    def update_meeting(self, meeting_id: int, fields: Mapping[str, Any]) -> None:
        """``PATCH /meetings/{id}`` (204)."""
        self._call(
            "PATCH", f"/meetings/{_meeting(meeting_id)}", route="/meetings/{id}", json=fields
        )

    def delete_meeting(self, meeting_id: int) -> bool:
        """``DELETE /meetings/{id}``: True when deleted now, False when it was already gone."""
        try:
            self._call("DELETE", f"/meetings/{_meeting(meeting_id)}", route="/meetings/{id}")
        except ZoomNotFound:
            return False
        return True

    def list_meetings(self, host: str, type: str = "upcoming") -> list[dict[str, Any]]:
        """``GET /users/{host}/meetings``, every page."""
        return self._every_page(f"/users/{_user(host)}/meetings", route="/users/{host}/meetings",
                                params={"type": type}, key="meetings")

    # Registrants ------------------------------------------------------------------------

    def add_registrant(
        self, meeting_id: int, *, email: str, first_name: str, last_name: str = ""
    ) -> dict[str, Any]:
        """``POST /meetings/{id}/registrants`` (Zoom's label: LIGHT): ``registrant_id`` and
        the registrant's own ``join_url`` (given when the meeting approves automatically)."""
        body = {"email": email, "first_name": first_name}
        if last_name:
            body["last_name"] = last_name
        response = self._call(
            "POST", f"/meetings/{_meeting(meeting_id)}/registrants", route="/meetings/{id}/registrants",
            json=body, category=LIGHT,
        )
        return _json_object(response)

    def list_registrants(self, meeting_id: int, status: str = "approved") -> list[dict[str, Any]]:
        """``GET /meetings/{id}/registrants`` (MEDIUM), every page."""
        return self._every_page(f"/meetings/{_meeting(meeting_id)}/registrants", route="/meetings/{id}/registrants",
                                params={"status": status}, key="registrants")

    def _every_page(self, path: str, *, route: str, params: dict[str, Any], key: str) -> list[dict[str, Any]]:
        """Every item of a paged list (Zoom's ``next_page_token``; MEDIUM, as Zoom labels lists).

        A token seen before ends the walk, and so does ``_MAX_PAGES``: a misbehaving answer
        cannot keep us paging for ever."""
        items: list[dict[str, Any]] = []
        params = {**params, "page_size": LIST_PAGE_SIZE}
        seen_tokens: set[str] = set()
        for _ in range(_MAX_PAGES):
            response = self._call("GET", path, route=route, params=params, category=MEDIUM)
            page = _json_object(response)
            found = page.get(key) or []
            if not isinstance(found, list):
                raise ZoomTransientError(f"{key} list answer has no {key} array", status=response.status_code)
            items.extend(item for item in found if isinstance(item, dict))
            token = page.get("next_page_token")
            if not token or not isinstance(token, str) or token in seen_tokens:
                return items
            seen_tokens.add(token)
            params = {**params, "next_page_token": token}
        raise ZoomTransientError(f"{key} list did not end after {_MAX_PAGES} pages")

    def cancel_registrants(self, meeting_id: int, registrant_ids: list[str]) -> None:
        """``PUT /meetings/{id}/registrants/status`` with ``cancel`` (MEDIUM, 204): their
        links stop working."""
        if not registrant_ids or len(registrant_ids) > 30:
            raise ValueError("registrant_ids must hold 1..30 ids (Zoom's batch limit)")
        self._call(
            "PUT", f"/meetings/{_meeting(meeting_id)}/registrants/status",
            route="/meetings/{id}/registrants/status",
            json={"action": "cancel", "registrants": [{"id": rid} for rid in registrant_ids]},
            category=MEDIUM,
        )

    # Transport --------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        route: str,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        category: str = LIGHT,
    ) -> requests.Response:
        for attempt in (1, 2):
            token = self._tokens.access_token()
            if self._limiter is not None:
                self._limiter(category)
            try:
                response = self._session.request(
                    method,
                    self._api_url + path,
                    json=dict(json) if json is not None else None,
                    params=dict(params) if params is not None else None,
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Accept": "application/json",
                        "User-Agent": USER_AGENT,
                    },
                    timeout=self._timeout,
                    # Redirects are never part of Zoom's API; following one could send the
                    # bearer token somewhere else.
                    allow_redirects=False,
                )
            except Exception as exc:
                failure = classify_exception(exc)
                ZOOM_CALLS.labels(operation=f"{method} {route}", status=type(failure).__name__).inc()
                log.warning(
                    "zoom.request_failed",
                    method=method,
                    path=route,
                    error_type=type(failure).__name__,
                )
                raise failure from exc
            error = classify_response(
                response.status_code, response.headers, _json_or_none(response), _now()
            )
            ZOOM_CALLS.labels(operation=f"{method} {route}", status=str(response.status_code)).inc()
            if isinstance(error, ZoomRateLimited):
                ZOOM_RATE_LIMITED.labels(kind="daily" if error.daily else "second").inc()
            if error is None:
                log.debug(
                    "zoom.request", method=method, path=route, http_status=response.status_code
                )
                return response
            if attempt == 1 and isinstance(error, ZoomAuthError) and error.token_rejected:
                log.info("zoom.token_rejected", method=method, path=route)
                self._tokens.invalidate(token)
                continue
            # Info, not warning: some errors are expected (404 on delete); callers judge.
            log.info(
                "zoom.request_error",
                method=method,
                path=route,
                http_status=error.status,
                zoom_code=error.code,
                error_type=type(error).__name__,
            )
            raise error
        raise AssertionError("unreachable")  # pragma: no cover


def _user(host: str) -> str:
    if not host or not isinstance(host, str):
        raise ValueError("host must be a Zoom user id, an email, or 'me'")
    # safe="" so an email's "@" and any "/" stay inside the one path segment.
    return quote(host, safe="")


def _meeting(meeting_id: int) -> str:
    # Zoom meeting ids are 64-bit integers; anything else must not be spliced into a path.
    if isinstance(meeting_id, bool) or not isinstance(meeting_id, int) or meeting_id <= 0:
        raise ValueError("meeting_id must be a positive integer")
    return str(meeting_id)


def _json_object(response: requests.Response) -> dict[str, Any]:
    body = _json_or_none(response)
    if not isinstance(body, dict):
        # The body may hold join/start urls: say what was wrong, never what was there.
        raise ZoomTransientError("Zoom answered without a JSON object", status=response.status_code)
    return body


def _json_or_none(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _now() -> datetime:
    return datetime.now(UTC)
