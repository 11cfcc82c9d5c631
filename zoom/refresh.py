"""The refresh skeleton both token providers share: one renewer across processes.

obtain → fresh? → take the Redis lock → re-check → renew → release quietly. Without the
lock: keep using a still-valid token, or poll until the holder has stored a new one. After
a failed renewal the still-valid token is served for ``RENEWAL_BACKOFF_SECONDS`` before
anyone tries again, so an outage of the token endpoint is not hammered by every API call.

A provider subclasses :class:`SingleFlightRefresh` and supplies what differs: where the
token is read from (``_read``), what fresh and usable mean (``_is_fresh``, ``_is_usable``),
and how it renews (``_renew``). The account token (``zoom.tokens``) is cached in Redis; a
doctor's token (``zoom.user_tokens``) is stored in the database with versions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Generic, TypeVar

import redis
import structlog

from telemed.zoom.errors import ZoomError, ZoomTransientError
from telemed.zoom.singleflight import RedisLock

log = structlog.get_logger(__name__)

RENEWAL_BACKOFF_SECONDS = 5.0
RecordT = TypeVar("RecordT")


class SingleFlightRefresh(ABC, Generic[RecordT]):
    """``_obtain``: the token to send now, renewed by at most one process at a time."""

    # Set by the provider's __init__.
    _redis: redis.Redis
    _clock: Callable[[], float]
    _sleep: Callable[[float], None]
    _poll_interval: float
    lock_key: str
    _lock_ttl: float
    _wait_limit: float
    _renewal_blocked_until: float = 0.0
    _log_prefix: str  # "zoom.token" / "zoom.user_token"
    _timeout_message: str

    @abstractmethod
    def _read(self) -> RecordT | None:
        """The current token record (None: there is none yet)."""

    @abstractmethod
    def _is_fresh(self, record: RecordT, now: float) -> bool:
        """Good to use without renewing."""

    @abstractmethod
    def _is_usable(self, record: RecordT, now: float) -> bool:
        """Due for renewal but still accepted by Zoom."""

    @abstractmethod
    def _token(self, record: RecordT) -> str: ...

    @abstractmethod
    def _adopt(self, record: RecordT) -> None:
        """Keep ``record`` as this process's copy."""

    @abstractmethod
    def _renew(self, current: RecordT | None, usable: RecordT | None) -> str:
        """Holding the lock: fetch, store and return a new token.

        ``current`` was re-read under the lock; ``usable`` is the still-valid record seen
        before it (for :meth:`_serve_after_failure`).
        """

    @abstractmethod
    def _lock_unavailable(self, exc: redis.RedisError) -> ZoomTransientError: ...

    def _obtain(self) -> str:
        deadline = self._clock() + self._wait_limit
        while True:
            current = self._read()
            now = self._clock()
            if current is not None and self._is_fresh(current, now):
                self._adopt(current)
                return self._token(current)
            usable = current if current is not None and self._is_usable(current, now) else None
            if usable is not None and now < self._renewal_blocked_until:
                return self._token(usable)
            lock = RedisLock(self._redis, self.lock_key, self._lock_ttl)
            if self._guard(lock.acquire):
                try:
                    return self._renew_holding_lock(usable)
                finally:
                    self._release_quietly(lock)
            if usable is not None:
                # Another process is renewing; the current token still works meanwhile.
                return self._token(usable)
            if self._clock() >= deadline:
                raise ZoomTransientError(self._timeout_message)
            self._sleep(self._poll_interval)

    def _renew_holding_lock(self, usable: RecordT | None) -> str:
        # Re-check: the previous holder may have stored a fresh token just before we got in.
        current = self._read()
        if current is not None and self._is_fresh(current, self._clock()):
            self._adopt(current)
            return self._token(current)
        return self._renew(current, usable)

    def _serve_after_failure(self, usable: RecordT | None, error: ZoomError) -> str:
        """A renewal failed: serve the still-valid token and back off, or raise ``error``."""
        if usable is None:
            raise error
        self._renewal_blocked_until = self._clock() + RENEWAL_BACKOFF_SECONDS
        return self._token(usable)

    def _renewed(self) -> None:
        self._renewal_blocked_until = 0.0

    def _guard(self, call: Callable[[], bool]) -> bool:
        try:
            return call()
        except redis.RedisError as exc:
            raise self._lock_unavailable(exc) from exc

    def _release_quietly(self, lock: RedisLock) -> None:
        # A failed release must not discard a token we just fetched; the lock's TTL frees it.
        try:
            lock.release()
        except redis.RedisError as exc:
            log.warning(f"{self._log_prefix}.lock_release_failed", error_type=type(exc).__name__)
