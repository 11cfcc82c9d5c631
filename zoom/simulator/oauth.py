"""Zoom's OAuth endpoints as the simulator plays them.

- ``GET /oauth/authorize``: the consent screen, auto-approved (or auto-denied, for tests
  of a doctor who clicks "Decline") as the user set with ``/_sim/authorize``; redirects
  to ``redirect_uri`` with ``code`` and ``state`` (or ``error=access_denied``).
- ``POST /oauth/token``: ``account_credentials`` for a server-to-server app (the token
  acts in that app's account, which ``account_id`` must name); ``authorization_code``
  (single use, expires, PKCE S256 checked) and ``refresh_token`` for a user-managed app,
  the one the code or refresh token was issued through. Refresh tokens rotate: each use
  hands out a new pair and the used refresh token is dead, so reusing it answers
  ``invalid_grant`` as Zoom does. A revoked app (``apps``) is ``invalid_client``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from telemed.zoom.simulator.wire import SimRequest, SimResponse

if TYPE_CHECKING:
    from telemed.zoom.simulator.state import SimState

SCOPES = (
    "meeting:write:meeting:admin meeting:read:meeting:admin meeting:update:meeting:admin "
    "meeting:delete:meeting:admin meeting:read:list_meetings:admin"
)
USER_SCOPES = (
    "meeting:write:meeting meeting:read:meeting meeting:update:meeting meeting:delete:meeting "
    "meeting:read:list_meetings"
)
REFRESH_LIFETIME_SECONDS = 90 * 24 * 3600  # Zoom's refresh tokens last 90 days
CODE_LIFETIME_SECONDS = 300
_B64URL_NOPAD = re.compile(r"^[A-Za-z0-9_-]{43,128}$")


@dataclass
class _Code:
    user: str
    client_id: str
    redirect_uri: str
    challenge: str | None
    method: str
    expires_at: float
    used: bool = False


@dataclass
class _Refresh:
    user: str
    client_id: str
    expires_at: float
    status: str = "live"  # live | rotated | revoked


class OAuthBook:
    """Authorization codes, refresh tokens and the consent decision."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.refresh_lifetime_seconds = float(REFRESH_LIFETIME_SECONDS)
        self.code_lifetime_seconds = float(CODE_LIFETIME_SECONDS)
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._codes: dict[str, _Code] = {}
            self._refresh: dict[str, _Refresh] = {}
            self.approve = True
            self.approving_user: str | None = None

    def new_code(self, user: str, redirect_uri: str, challenge: str | None, method: str, client_id: str = "") -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Code(
                user, client_id, redirect_uri, challenge, method, self._clock() + self.code_lifetime_seconds
            )
        return code

    def redeem_code(self, code: str, redirect_uri: str, verifier: str | None, client_id: str = "") -> str:
        """The user the code was issued to; raises ``_Invalid`` with Zoom's reason."""
        with self._lock:
            record = self._codes.get(code)
            if record is None or record.used or (client_id and record.client_id != client_id):
                raise _Invalid("Invalid authorization code " + ("(already used)" if record else ""))
            record.used = True  # single use, even when the rest of the request is wrong
            if self._clock() >= record.expires_at:
                raise _Invalid("Authorization code has expired")
        if record.redirect_uri != redirect_uri:
            raise _Invalid("Redirect URI mismatch")
        if record.challenge is not None and not _pkce_ok(record.challenge, record.method, verifier):
            raise _Invalid("Invalid code_verifier")
        return record.user

    def new_refresh(self, user: str, client_id: str = "") -> str:
        token = secrets.token_urlsafe(48)
        with self._lock:
            self._refresh[token] = _Refresh(user, client_id, self._clock() + self.refresh_lifetime_seconds)
        return token

    def rotate(self, token: str, client_id: str = "") -> str:
        """Spend a refresh token; the user it belonged to. Reuse raises ``_Invalid``, and
        so does another app's refresh token."""
        with self._lock:
            record = self._refresh.get(token)
            if record is None or record.status != "live" or (client_id and record.client_id != client_id):
                raise _Invalid("Invalid Token!")
            if self._clock() >= record.expires_at:
                record.status = "revoked"
                raise _Invalid("Refresh token has expired")
            record.status = "rotated"
            return record.user

    def revoke_user(self, user: str) -> int:
        with self._lock:
            live = [r for r in self._refresh.values() if r.user == user and r.status == "live"]
            for record in live:
                record.status = "revoked"
        return len(live)



class _Invalid(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason.strip()


# Routes --------------------------------------------------------------------------------


def authorize(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    book: OAuthBook = state.oauth_book
    query = request.query
    app = state.apps.oauth_app(query.get("client_id"))
    if app is None:
        return SimResponse(400, {"reason": "Invalid client_id", "error": "invalid_client"})
    redirect_uri = query.get("redirect_uri", "")
    if urlsplit(redirect_uri).scheme not in {"http", "https"}:
        return SimResponse(400, {"reason": "Invalid redirect_uri", "error": "invalid_request"})
    back: dict[str, str] = {}
    if "state" in query:
        back["state"] = query["state"]
    method = query.get("code_challenge_method", "plain")
    challenge = query.get("code_challenge")
    if query.get("response_type") != "code":
        back["error"] = "unsupported_response_type"
    elif challenge is not None and (method not in {"S256", "plain"} or not challenge):
        back["error"] = "invalid_request"
    elif not book.approve:
        back["error"] = "access_denied"
    else:
        user = (book.approving_user or state.default_host_email).lower()
        back["code"] = book.new_code(user, redirect_uri, challenge, method, app.client_id)
        state.count("authorize.approved")
    separator = "&" if "?" in redirect_uri else "?"
    return SimResponse(302, None, {"Location": redirect_uri + separator + urlencode(back)})


def token(state: SimState, request: SimRequest, _: re.Match[str]) -> SimResponse:
    client_id, client_secret = _basic_auth(request.headers.get("authorization")) or ("", "")
    params = {**request.query, **request.form}  # Zoom accepts either
    grant_type = params.get("grant_type")
    if grant_type == "account_credentials":
        account_app = state.apps.account_app(client_id, client_secret)
        if account_app is None:
            state.count("invalid_client")
            return _invalid_client()
        if params.get("account_id") != account_app.account_id:
            return SimResponse(
                400, {"reason": "Invalid request : Account ID is invalid", "error": "invalid_request"}
            )
        access = state.issue_token(kind="account", account=account_app.account_id, app=account_app.client_id)
        return _grant(state, request, access, None, SCOPES)
    if grant_type not in {"authorization_code", "refresh_token"}:
        if not state.apps.is_known(client_id, client_secret):
            return _invalid_client()
        return SimResponse(
            400, {"reason": "Unsupported grant type", "error": "unsupported_grant_type"}
        )
    oauth_app = state.apps.oauth_app(client_id, client_secret)
    if oauth_app is None:
        state.count("invalid_client")
        return _invalid_client()
    book: OAuthBook = state.oauth_book
    try:
        if grant_type == "authorization_code":
            user = book.redeem_code(
                params.get("code", ""), params.get("redirect_uri", ""), params.get("code_verifier"), client_id
            )
        else:
            user = book.rotate(params.get("refresh_token", ""), client_id)
    except _Invalid as invalid:
        state.count("invalid_grant")
        return SimResponse(400, {"reason": invalid.reason, "error": "invalid_grant"})
    access = state.issue_token(user=user, kind=grant_type, app=client_id)
    refresh = book.new_refresh(user, client_id)
    with state.lock:
        state.handed_out.add(refresh)
    return _grant(state, request, access, refresh, USER_SCOPES)


def _grant(
    state: SimState, request: SimRequest, access: str, refresh: str | None, scope: str
) -> SimResponse:
    body: dict[str, object] = {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": state.token_lifetime_seconds,
        "scope": scope,
        "api_url": request.base_url,
    }
    if refresh is not None:
        body["refresh_token"] = refresh
    return SimResponse(200, body)


def _invalid_client() -> SimResponse:
    return SimResponse(401, {"reason": "Invalid client_id or client_secret", "error": "invalid_client"})


def _pkce_ok(challenge: str, method: str, verifier: str | None) -> bool:
    if not verifier or not _B64URL_NOPAD.match(verifier):
        return False
    if method == "plain":
        return secrets.compare_digest(challenge, verifier)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    expected = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
    return secrets.compare_digest(challenge, expected)


def _basic_auth(header: str | None) -> tuple[str, str] | None:
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        user, _, password = (
            base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password
