"""Admin sign-in: an admin API key once, then a signed, expiring session cookie.

The cookie holds the key's public prefix, its clinic and a random nonce, signed with itsdangerous
under the TELEMED_SECRET_KEYS keys (newest signs, any verifies; its own salt). A valid
signature is not enough: the session must also still be on record in Redis (written at
sign-in with a relative TTL of SESSION_MAX_AGE, deleted at sign-out), so a copy of the
cookie saved before sign-out is refused. Every request also checks that the key still
exists, is an admin key of the same clinic and is not revoked (nor its clinic deleted), so
revoking the key ends its sessions; every page and action is then bounded by that clinic. CSRF: each form carries an HMAC of the session nonce (or, on
the login form, of a pre-login cookie's nonce); a POST without the matching token is
refused. Cookies are HttpOnly, SameSite=Strict, scoped to /admin, Secure over HTTPS.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import redis
from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_COOKIE = "telemed_admin"
LOGIN_COOKIE = "telemed_admin_login"
SESSION_MAX_AGE = 8 * 3600
SALT = "telemed.admin-session.v1"


@dataclass(frozen=True)
class AdminSession:
    key_prefix: str
    nonce: str
    clinic_id: str  # the key's clinic when signed in; checked against the key's row on every request


def _serializer(keys: Sequence[str]) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(list(reversed(list(keys))), salt=SALT,
                                  signer_kwargs={"digest_method": hashlib.sha256, "key_derivation": "hmac"})


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def make_session(keys: Sequence[str], key_prefix: str, clinic_id: str) -> tuple[str, AdminSession]:
    session = AdminSession(key_prefix, new_nonce(), clinic_id)
    return str(_serializer(keys).dumps({"p": key_prefix, "n": session.nonce, "c": clinic_id})), session


def read_session(keys: Sequence[str], cookie: str | None) -> AdminSession | None:
    if not cookie or len(cookie) > 512:
        return None
    try:
        data = _serializer(keys).loads(cookie, max_age=SESSION_MAX_AGE)
    except BadSignature:  # also an expired one (SignatureExpired is a BadSignature)
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("p", "n", "c")):
        return None  # also a cookie from before clinics: signing in again is enough
    return AdminSession(data["p"], data["n"], data["c"])


def _record_key(namespace: str, session: AdminSession) -> str:
    # The nonce's hash, not the nonce: whoever reads Redis learns nothing to forge a CSRF token with.
    return f"{namespace}:admin:session:{hashlib.sha256(session.nonce.encode()).hexdigest()}"


def remember(client: redis.Redis, namespace: str, session: AdminSession) -> None:
    """Put a new session on record; it lapses on its own after SESSION_MAX_AGE (Redis's clock)."""
    client.set(_record_key(namespace, session), session.key_prefix, ex=SESSION_MAX_AGE)


def on_record(client: redis.Redis, namespace: str, session: AdminSession) -> bool:
    """True while the session has not been signed out (or lapsed), for the key it was made for."""
    stored = client.get(_record_key(namespace, session))
    held = stored.decode() if isinstance(stored, bytes) else stored
    return held is not None and hmac.compare_digest(str(held), session.key_prefix)


def forget(client: redis.Redis, namespace: str, session: AdminSession) -> None:
    client.delete(_record_key(namespace, session))


def csrf_token(keys: Sequence[str], purpose: str, nonce: str) -> str:
    key = hashlib.sha256(("telemed.admin-csrf.v1:" + keys[0]).encode()).digest()
    return hmac.new(key, f"{purpose}:{nonce}".encode(), hashlib.sha256).hexdigest()


def csrf_ok(keys: Sequence[str], purpose: str, nonce: str | None, presented: str | None) -> bool:
    if not nonce or not presented:
        return False
    return hmac.compare_digest(csrf_token(keys, purpose, nonce), presented)
