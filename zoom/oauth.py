"""The one HTTP call to Zoom's OAuth token endpoint, shared by every token provider.

Server-to-server apps send ``grant_type=account_credentials``; user-managed apps (doctors
connecting their own Zoom) send ``authorization_code`` or ``refresh_token``. All of them
authenticate the app with HTTP Basic and get the same JSON answer, so only the form differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from telemed.foundation import tls
from telemed.zoom.errors import ZoomTransientError, classify_exception, classify_response

USER_AGENT = "telemed-zoom/0.1"


@dataclass(frozen=True, repr=False)
class TokenGrant:
    """What the token endpoint handed out. ``repr`` hides the tokens."""

    access_token: str
    expires_in: float
    token_type: str = "bearer"  # noqa: S105  (a token type, not a credential)
    scope: str = ""
    refresh_token: str | None = None

    def __repr__(self) -> str:
        return (
            f"TokenGrant(expires_in={self.expires_in!r}, token_type={self.token_type!r}, "
            f"scope={self.scope!r}, refresh_token={'<set>' if self.refresh_token else None})"
        )


def request_token(
    oauth_url: str,
    *,
    client_id: str,
    client_secret: str,
    form: Mapping[str, str],
    timeout: float = 10.0,
    session: requests.Session | None = None,
) -> TokenGrant:
    """``POST {oauth_url}/token`` with Basic auth; raises a :class:`~zoom.errors.ZoomError`.

    ``oauth_url`` must already be checked for TLS (the providers do it at construction).
    """
    # Without a caller's session, a fresh TLS 1.2+ one (module-level requests would use
    # urllib3's defaults); token grants are rare, so the lost connection reuse costs nothing.
    http = session or tls.secure_session()
    try:
        response = http.post(
            f"{oauth_url.rstrip('/')}/token",
            data=dict(form),
            auth=(client_id, client_secret),
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            timeout=(timeout, timeout),
            # A redirect would carry our Basic credentials to wherever it points.
            allow_redirects=False,
        )
    except Exception as exc:
        raise classify_exception(exc) from exc
    finally:
        if session is None:
            http.close()
    body = _json_or_none(response)
    error = classify_response(response.status_code, response.headers, body, datetime.now(UTC))
    if error is not None:
        raise error
    return _parse_grant(body)


def _parse_grant(body: Any) -> TokenGrant:
    if not isinstance(body, Mapping):
        raise ZoomTransientError("token endpoint answered without a JSON object", status=200)
    token = body.get("access_token")
    expires_in = body.get("expires_in")
    if not isinstance(token, str) or not token:
        raise ZoomTransientError("token endpoint answer has no access_token", status=200)
    if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)) or expires_in <= 0:
        raise ZoomTransientError("token endpoint answer has no valid expires_in", status=200)
    refresh = body.get("refresh_token")
    return TokenGrant(
        access_token=token,
        expires_in=float(expires_in),
        token_type=str(body.get("token_type") or "bearer"),
        scope=str(body.get("scope") or ""),
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
    )


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
