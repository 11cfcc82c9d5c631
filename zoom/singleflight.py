"""A Redis lock that lets exactly one process at a time do something expensive.

``SET key owner NX PX ttl`` takes it; a compare-and-delete script releases it only if we
still own it, so a holder that overran its TTL cannot free a lock someone else now holds.
The TTL bounds how long a crashed holder blocks everyone else.
"""

from __future__ import annotations

import secrets
from types import TracebackType

import redis

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class RedisLock:
    def __init__(self, client: redis.Redis, key: str, ttl_seconds: float) -> None:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        self._client = client
        self.key = key
        self._ttl_ms = max(1, int(ttl_seconds * 1000))
        self._owner: str | None = None

    @property
    def held(self) -> bool:
        return self._owner is not None

    def acquire(self) -> bool:
        """Try once; True when we now hold the lock."""
        owner = secrets.token_hex(16)
        if self._client.set(self.key, owner, nx=True, px=self._ttl_ms):
            self._owner = owner
            return True
        return False

    def release(self) -> bool:
        """Release if still ours; False when it had expired (and maybe been retaken)."""
        owner, self._owner = self._owner, None
        if owner is None:
            return False
        return bool(self._client.eval(_RELEASE, 1, self.key, owner))

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.held:
            self.release()
