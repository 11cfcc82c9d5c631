"""Access tokens for Zoom's API: where they come from and how they are shared.

The server-to-server provider keeps ONE token for all worker processes in Redis,
encrypted, and renews it ``margin_seconds`` before it expires. Renewal is single-flight
across processes: a Redis lock picks one renewer, everyone else keeps using the still-valid
token or polls the cache briefly for the new one. (A doctor's own token, which also
rotates its refresh token, is ``zoom.user_tokens``.)
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import redis
import requests
import structlog

from telemed.foundation.cipher import Cipher, DecryptionError
from telemed.foundation.urls import require_secure_url
from telemed.zoom.errors import ZoomAppRefused, ZoomAuthError, ZoomError, ZoomTransientError, app_refusal
from telemed.zoom.metrics import TOKEN_REFRESHES
from telemed.zoom.oauth import request_token
from telemed.zoom.refresh import SingleFlightRefresh

log = structlog.get_logger(__name__)

# How long a provider answers "refused" without asking again after Zoom refused its app:
# the threads queued behind the one that asked (a burst of a clinic's bookings) must not
# each ask the token endpoint. Short, so a fixed app is seen soon even in this process.
REFUSAL_MEMORY_SECONDS = 30.0

# Delete the cache entry only if it still holds the token being invalidated (its
# fingerprint prefixes the value): a token another process just fetched must survive.
_DELETE_IF_FINGERPRINT = """
local value = redis.call('get', KEYS[1])
if value and string.sub(value, 1, string.len(ARGV[1])) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


@runtime_checkable
class TokenProvider(Protocol):
    def access_token(self) -> str:
        """A token to send now (may block briefly while one is fetched)."""
        ...

    def invalidate(self, token: str) -> None:
        """Zoom rejected ``token``: never hand it out again."""
        ...


class StaticTokenProvider:
    """A fixed token (tests, or a token minted elsewhere). Cannot renew.

    An empty token stands for "Zoom is not configured": every call then fails with
    :class:`~zoom.errors.ZoomAuthError` before anything is sent.
    """

    def __init__(self, token: str) -> None:
        self._token = token

    def access_token(self) -> str:
        if not self._token:
            raise ZoomAuthError("no Zoom access token configured")
        return self._token

    def invalidate(self, token: str) -> None:
        # Nothing to renew from: the caller's retry will fail again and surface the error.
        return None

    def __repr__(self) -> str:
        return "StaticTokenProvider(<token>)"


@dataclass(frozen=True, repr=False)
class CachedToken:
    token: str
    expires_at: float  # unix seconds
    lifetime: float  # as granted, to cap the renewal margin

    def renew_at(self, margin_seconds: float) -> float:
        # Never renew earlier than half-way through, or a short-lived token renews forever.
        return self.expires_at - min(margin_seconds, self.lifetime / 2)

    def fresh(self, now: float, margin_seconds: float) -> bool:
        return now < self.renew_at(margin_seconds)

    def valid(self, now: float) -> bool:
        return now < self.expires_at - 1.0  # a second of slack for the request in flight


def token_fingerprint(token: str) -> str:
    """A non-reversible tag of a token, to compare without decrypting."""
    return hashlib.sha256(b"telemed-zoom-token\x00" + token.encode("utf-8")).hexdigest()[:32]


def account_token_keys(namespace: str, account_id: str, client_id: str) -> tuple[str, str]:
    """The Redis keys (cached token, refresh lock) of one server-to-server app and account.

    Scoped to the app and account, naming no identifier in clear; a clinic's erasure
    (``workers.clinic_redis``) finds its cached token here.
    """
    scope = hashlib.sha256(f"{account_id}\x00{client_id}".encode()).hexdigest()[:16]
    return f"{namespace}:zoom:s2s:{scope}:token", f"{namespace}:zoom:s2s:{scope}:lock"


class AccountTokenProvider(SingleFlightRefresh[CachedToken]):
    """Server-to-server OAuth (``grant_type=account_credentials``) with a shared cache."""

    def __init__(
        self,
        oauth_url: str,
        account_id: str,
        client_id: str,
        client_secret: str,
        redis_client: redis.Redis,
        cipher: Cipher,
        namespace: str = "telemed",
        margin_seconds: float = 300,
        timeout: float = 10,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = 0.05,
    ) -> None:
        if not (account_id and client_id and client_secret):
            raise ValueError("account_id, client_id and client_secret are all required")
        self._oauth_url = require_secure_url(oauth_url, what="the Zoom OAuth URL")
        self._account_id = account_id
        self._client_id = client_id
        self._client_secret = client_secret
        self._redis = redis_client
        self._cipher = cipher
        self._margin = float(margin_seconds)
        self._timeout = float(timeout)
        self._session = session
        self._clock = clock
        self._sleep = sleep
        self._poll_interval = poll_interval
        self.cache_key, self.lock_key = account_token_keys(namespace, account_id, client_id)
        # The lock outlives the slowest token request (connect + read timeouts) with room.
        self._lock_ttl = 2 * self._timeout + 5
        self._wait_limit = self._lock_ttl + 1
        self._local: CachedToken | None = None
        self._renewal_blocked_until = 0.0
        self._log_prefix = "zoom.token"
        self._timeout_message = "timed out waiting for another process to fetch a Zoom access token"
        # Threads of one process queue here rather than each polling Redis.
        self._mutex = threading.Lock()
        self._refused: tuple[float, ZoomAppRefused] | None = None  # (until, what Zoom said)

    def __repr__(self) -> str:
        return f"AccountTokenProvider(oauth_url={self._oauth_url!r}, cache_key={self.cache_key!r})"

    # TokenProvider ----------------------------------------------------------------------

    def access_token(self) -> str:
        local = self._local
        if local is not None and local.fresh(self._clock(), self._margin):
            return local.token
        with self._mutex:
            refused = self._refused
            if refused is not None and self._clock() < refused[0]:
                # Unless another process got a token meanwhile (the app works again).
                shared = self._read_shared()
                if shared is None or not shared.fresh(self._clock(), self._margin):
                    error = refused[1]  # a fresh instance per caller: threads must not share a traceback
                    raise ZoomAppRefused(error.message, status=error.status, code=error.code)
                self._refused = None
            return self._obtain()

    def invalidate(self, token: str) -> None:
        # The shared copy goes under the mutex too: otherwise another thread of this
        # process could adopt the rejected token from Redis between the two steps, and the
        # caller's one retry would send it again (found by the two-clinic test: a revoked
        # app's second 401 came back as "token expired", not as the app's refusal).
        with self._mutex:
            if self._local is not None and self._local.token == token:
                self._local = None
            self._renewal_blocked_until = 0.0
            try:
                self._redis.eval(
                    _DELETE_IF_FINGERPRINT, 1, self.cache_key, token_fingerprint(token) + ":"
                )
            except redis.RedisError as exc:
                raise _cache_unavailable(exc) from exc
        log.info("zoom.token.invalidated")

    # Internals --------------------------------------------------------------------------

    def _read(self) -> CachedToken | None:
        local = self._local
        return local if local is not None and local.fresh(self._clock(), self._margin) else self._read_shared()

    def _is_fresh(self, record: CachedToken, now: float) -> bool:
        return record.fresh(now, self._margin)

    def _is_usable(self, record: CachedToken, now: float) -> bool:
        return record.valid(now)

    def _token(self, record: CachedToken) -> str:
        return record.token

    def _adopt(self, record: CachedToken) -> None:
        self._local = record

    def _lock_unavailable(self, exc: redis.RedisError) -> ZoomTransientError:
        return _cache_unavailable(exc)

    def _renew(self, current: CachedToken | None, usable: CachedToken | None) -> str:
        try:
            grant = request_token(
                self._oauth_url,
                client_id=self._client_id,
                client_secret=self._client_secret,
                form={"grant_type": "account_credentials", "account_id": self._account_id},
                timeout=self._timeout,
                session=self._session,
            )
        except ZoomError as failure:
            TOKEN_REFRESHES.labels(kind="account", outcome="failed").inc()
            # invalid_client (a revoked app, a wrong secret) or a wrong account id: the
            # app itself is refused, which the workers handle per clinic.
            error = app_refusal(failure)
            if isinstance(error, ZoomAppRefused) and usable is None:
                self._refused = (self._clock() + REFUSAL_MEMORY_SECONDS, error)
            token = self._serve_after_failure(usable, error)
            log.warning(
                "zoom.token.renewal_failed",
                error_type=type(error).__name__,
                http_status=error.status,
            )
            return token
        TOKEN_REFRESHES.labels(kind="account", outcome="ok").inc()
        now = self._clock()
        fresh = CachedToken(grant.access_token, now + grant.expires_in, grant.expires_in)
        self._write_shared(fresh, now)
        self._local = fresh
        self._refused = None
        self._renewed()
        log.info("zoom.token.renewed", expires_in_s=grant.expires_in)
        return fresh.token

    def _read_shared(self) -> CachedToken | None:
        try:
            raw = self._redis.get(self.cache_key)
        except redis.RedisError as exc:
            raise _cache_unavailable(exc) from exc
        if raw is None:
            return None
        text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
        _fingerprint, _, sealed = text.partition(":")
        try:
            data = json.loads(self._cipher.decrypt(sealed))
            return CachedToken(
                str(data["token"]), float(data["expires_at"]), float(data["lifetime"])
            )
        except (DecryptionError, ValueError, KeyError, TypeError, UnicodeError):
            # Written under a retired key or corrupted: as good as absent; renewal overwrites it.
            return None

    def _write_shared(self, cached: CachedToken, now: float) -> None:
        sealed = self._cipher.encrypt(
            json.dumps(
                {
                    "token": cached.token,
                    "expires_at": cached.expires_at,
                    "lifetime": cached.lifetime,
                }
            )
        )
        ttl_ms = max(1, int((cached.expires_at - now) * 1000))
        try:
            self._redis.set(
                self.cache_key, f"{token_fingerprint(cached.token)}:{sealed}", px=ttl_ms
            )
        except redis.RedisError as exc:
            raise _cache_unavailable(exc) from exc


def _cache_unavailable(exc: BaseException) -> ZoomTransientError:
    return ZoomTransientError(f"shared token cache (Redis) unavailable ({type(exc).__name__})")
