"""A doctor's own Zoom token (user-managed OAuth), refreshed single-flight across processes.

Zoom rotates user refresh tokens: each refresh hands out a new pair and the old refresh
token dies, so two processes refreshing at once burn the grant (the loser gets
``invalid_grant`` and the doctor would have to reconnect). Here:

- the pair lives in the store (encrypted) with a version; a refresh is a compare-and-swap
  on that version, and the new pair is persisted before anyone uses it;
- a Redis lock per doctor picks the one refresher among all processes and hosts; a
  process's threads queue on a local mutex first, so only one thread per process asks;
- callers that did not get the lock keep using the current token while it is still
  valid, or wait and re-read the store until the new version appears;
- refreshes are proactive: ``margin_seconds`` before expiry (capped at half the lifetime);
- a 401 / code 124 (``invalidate``) forces one refresh, shared by everyone who saw it;
- ``invalid_grant`` means the grant is dead: the store is told once
  (``mark_needs_reconnect``) and every caller gets :class:`~zoom.errors.ZoomGrantRevoked`;
- should the store fail right after Zoom rotated the pair, the new pair is parked in
  Redis (encrypted) and the next refresher applies it instead of spending the dead token.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis
import requests
import structlog

from telemed.foundation.cipher import Cipher, DecryptionError
from telemed.foundation.urls import require_secure_url
from telemed.store.zoom_tokens import CONNECTED, NewGrant, StoredGrant
from telemed.zoom.errors import ZoomError, ZoomGrantRevoked, ZoomTransientError
from telemed.zoom.metrics import TOKEN_REFRESHES
from telemed.zoom.oauth import request_token
from telemed.zoom.refresh import SingleFlightRefresh

log = structlog.get_logger(__name__)

_RESCUE_TTL_SECONDS = 24 * 3600


class UserTokenStore(Protocol):
    def load(self, doctor_id: str) -> StoredGrant | None: ...

    def swap(self, doctor_id: str, expected_version: int, grant: NewGrant) -> int | None: ...

    def mark_needs_reconnect(self, doctor_id: str, expected_version: int) -> bool: ...


def renew_at(grant: StoredGrant, margin_seconds: float) -> float:
    # Never renew earlier than half-way through, or a short-lived token renews forever.
    return grant.expires_at - min(margin_seconds, grant.lifetime / 2)



def user_token_keys(namespace: str, doctor_id: str) -> tuple[str, str]:
    """The Redis keys (refresh lock, rescue slot) of one doctor's token; the rescue slot
    may hold a sealed token pair, so a clinic's erasure (``workers.clinic_redis``) deletes it."""
    scope = hashlib.sha256(f"{namespace}\x00{doctor_id}".encode()).hexdigest()[:16]
    return f"{namespace}:zoom:user:{scope}:lock", f"{namespace}:zoom:user:{scope}:rescue"

class UserTokenProvider(SingleFlightRefresh[StoredGrant]):
    """``TokenProvider`` for one doctor's own Zoom connection."""

    def __init__(
        self,
        doctor_id: str,
        store: UserTokenStore,
        *,
        oauth_url: str,
        client_id: str,
        client_secret: str,
        redis_client: redis.Redis,
        cipher: Cipher,
        namespace: str = "telemed",
        margin_seconds: float = 300,
        timeout: float = 10,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = 0.05,
    ) -> None:
        if not (client_id and client_secret):
            raise ValueError("the OAuth app's client_id and client_secret are required")
        self.doctor_id = doctor_id
        self._store = store
        self._oauth_url = require_secure_url(oauth_url, what="the Zoom OAuth URL")
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
        self.lock_key, self.rescue_key = user_token_keys(namespace, doctor_id)
        # The lock outlives a token request (connect + read timeouts) plus the store write.
        self._lock_ttl = 2 * self._timeout + 10
        self._wait_limit = self._lock_ttl + 1
        self._local: StoredGrant | None = None
        self._rejected: str | None = None  # an access token Zoom refused (code 124)
        self._renewal_blocked_until = 0.0
        self._log_prefix = "zoom.user_token"
        self._timeout_message = "timed out waiting for another process to refresh"
        self._mutex = threading.Lock()

    def __repr__(self) -> str:
        return f"UserTokenProvider(doctor_id={self.doctor_id!r})"

    # TokenProvider ----------------------------------------------------------------------

    def access_token(self) -> str:
        local = self._local
        if local is not None and self._is_fresh(local, self._clock()):
            return local.access_token
        with self._mutex:
            return self._obtain()

    def invalidate(self, token: str) -> None:
        with self._mutex:
            self._rejected = token
            if self._local is not None and self._local.access_token == token:
                self._local = None
            self._renewal_blocked_until = 0.0
        log.info("zoom.user_token.rejected", doctor_id=self.doctor_id)

    def refresh_if_due(self) -> bool:
        """For the background refresher: renew now if within the margin. True if renewed."""
        with self._mutex:
            before = self._store.load(self.doctor_id)
            if before is None or before.status != CONNECTED or self._is_fresh(before, self._clock()):
                return False
            self._obtain()
            after = self._store.load(self.doctor_id)
            return after is not None and after.version != before.version

    # Internals --------------------------------------------------------------------------

    def _is_fresh(self, record: StoredGrant, now: float) -> bool:
        return (
            record.status == CONNECTED
            and record.access_token != self._rejected
            and now < renew_at(record, self._margin)
        )

    def _is_usable(self, record: StoredGrant, now: float) -> bool:
        return (
            record.status == CONNECTED
            and record.access_token != self._rejected
            and now < record.expires_at - 1.0  # a second of slack for the request in flight
        )

    def _token(self, record: StoredGrant) -> str:
        return record.access_token

    def _adopt(self, record: StoredGrant) -> None:
        self._local = record

    def _lock_unavailable(self, exc: redis.RedisError) -> ZoomTransientError:
        return ZoomTransientError(f"token lock (Redis) unavailable ({type(exc).__name__})")

    def _read(self) -> StoredGrant:
        try:
            grant = self._store.load(self.doctor_id)
        except Exception as exc:  # the store blinked: a transient failure of this call
            raise ZoomTransientError(f"token store unavailable ({type(exc).__name__})") from exc
        if grant is None:
            raise ZoomGrantRevoked(f"doctor {self.doctor_id} has not connected Zoom")
        if grant.status != CONNECTED:
            raise ZoomGrantRevoked(f"doctor {self.doctor_id} must reconnect Zoom")
        return grant

    def _renew(self, current: StoredGrant | None, usable: StoredGrant | None) -> str:
        assert current is not None  # _read raises rather than answer None
        rescued = self._apply_rescue(current)
        if rescued is not None:
            return rescued
        try:
            grant = request_token(
                self._oauth_url,
                client_id=self._client_id,
                client_secret=self._client_secret,
                form={"grant_type": "refresh_token", "refresh_token": current.refresh_token},
                timeout=self._timeout,
                session=self._session,
            )
        except ZoomGrantRevoked:
            TOKEN_REFRESHES.labels(kind="user", outcome="invalid_grant").inc()
            return self._grant_died(current)
        except ZoomError as error:
            TOKEN_REFRESHES.labels(kind="user", outcome="failed").inc()
            log.warning(
                "zoom.user_token.refresh_failed",
                doctor_id=self.doctor_id,
                error_type=type(error).__name__,
                http_status=error.status,
            )
            still_valid = current if self._is_usable(current, self._clock()) else None
            return self._serve_after_failure(still_valid, error)
        if not grant.refresh_token:
            raise ZoomTransientError("token endpoint answered a refresh without a refresh_token")
        fresh = NewGrant(grant.access_token, grant.refresh_token, grant.expires_in, grant.scope)
        return self._persist(current, fresh)

    def _persist(self, current: StoredGrant, fresh: NewGrant) -> str:
        try:
            version = self._store.swap(self.doctor_id, current.version, fresh)
        except Exception as exc:
            # Zoom already rotated: the old refresh token is dead. Keep the new pair where
            # the next refresher finds it, or the doctor would have to reconnect.
            self._park(current.version, fresh)
            TOKEN_REFRESHES.labels(kind="user", outcome="parked").inc()
            raise ZoomTransientError(
                f"could not store the refreshed Zoom token ({type(exc).__name__})"
            ) from exc
        if version is None:
            # The version moved under us (a reconnect, or a holder whose lock expired):
            # what is stored wins.
            TOKEN_REFRESHES.labels(kind="user", outcome="lost_race").inc()
            log.warning("zoom.user_token.version_moved", doctor_id=self.doctor_id)
            latest = self._read()
            self._local = latest
            return latest.access_token
        TOKEN_REFRESHES.labels(kind="user", outcome="ok").inc()
        self._forget_rescue()
        now = self._clock()
        self._local = StoredGrant(
            self.doctor_id, fresh.access_token, fresh.refresh_token, now + fresh.expires_in,
            fresh.expires_in, version, CONNECTED,
        )
        self._rejected = None
        self._renewed()
        log.info("zoom.user_token.refreshed", doctor_id=self.doctor_id, version=version,
                 expires_in_s=fresh.expires_in)
        return fresh.access_token

    def _grant_died(self, current: StoredGrant) -> str:
        latest = self._store.load(self.doctor_id)
        if latest is not None and latest.version != current.version and latest.status == CONNECTED:
            # Someone stored a newer pair (a reconnect) after we read ours: use theirs.
            self._local = latest
            return latest.access_token
        newly = self._store.mark_needs_reconnect(self.doctor_id, current.version)
        self._local = None
        log.error("zoom.user_token.grant_revoked", doctor_id=self.doctor_id, first_report=newly)
        raise ZoomGrantRevoked(f"doctor {self.doctor_id} must reconnect Zoom (invalid_grant)")

    # The rescue slot ------------------------------------------------------------------

    def _park(self, base_version: int, grant: NewGrant) -> None:
        sealed = self._cipher.encrypt(json.dumps({
            "base_version": base_version, "access_token": grant.access_token,
            "refresh_token": grant.refresh_token, "expires_in": grant.expires_in,
            "scope": grant.scope, "obtained_at": self._clock(),
        }))
        try:
            self._redis.set(self.rescue_key, sealed, ex=_RESCUE_TTL_SECONDS)
        except redis.RedisError:
            log.error("zoom.user_token.rescue_failed", doctor_id=self.doctor_id)

    def _apply_rescue(self, current: StoredGrant) -> str | None:
        try:
            raw = self._redis.get(self.rescue_key)
        except redis.RedisError:
            return None
        if raw is None:
            return None
        try:
            data = json.loads(self._cipher.decrypt(raw.decode("ascii") if isinstance(raw, bytes) else raw))
        except (DecryptionError, ValueError, UnicodeError):
            self._forget_rescue()
            return None
        if data.get("base_version") != current.version:
            self._forget_rescue()  # it belonged to an older generation
            return None
        elapsed = self._clock() - float(data["obtained_at"])
        fresh = NewGrant(
            str(data["access_token"]), str(data["refresh_token"]),
            max(1.0, float(data["expires_in"]) - elapsed), str(data.get("scope", "")),
        )
        log.warning("zoom.user_token.rescued", doctor_id=self.doctor_id)
        return self._persist(current, fresh)

    def _forget_rescue(self) -> None:
        with contextlib.suppress(redis.RedisError):
            self._redis.delete(self.rescue_key)

