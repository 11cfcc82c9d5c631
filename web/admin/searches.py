"""An admin's search, kept server-side so no patient's name or e-mail reaches a URL.

The search form is a POST; what was asked is encrypted (the store's cipher) and kept in
Redis for an hour under a random handle bound to the admin's session, and the result
pages carry only the handle (``?search=…``): a browser's history, a proxy's log or our
access log (which masks the whole query anyway: web access-log masking) never hold it.
Another session, even of the same admin, cannot use the handle.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets

import redis

from telemed.foundation.cipher import Cipher, DecryptionError
from telemed.store.appointment_list import Criteria, InvalidSearch, criteria

TTL_SECONDS = 3600
_HANDLE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def _key(namespace: str, session_nonce: str, handle: str) -> str:
    owner = hashlib.sha256(session_nonce.encode()).hexdigest()[:32]
    return f"{namespace}:admin:search:{owner}:{handle}"


def save(client: redis.Redis, namespace: str, cipher: Cipher, session_nonce: str, search: Criteria) -> str:
    handle = secrets.token_urlsafe(16)
    plain = json.dumps({"a": search.appointment, "d": search.doctor, "p": search.patient})
    client.set(_key(namespace, session_nonce, handle), cipher.encrypt(plain), ex=TTL_SECONDS)
    return handle


def load(client: redis.Redis, namespace: str, cipher: Cipher, session_nonce: str, handle: str) -> Criteria | None:
    """The search behind ``handle`` for this session; None when unknown, lapsed or not its own."""
    if not _HANDLE.match(handle):
        return None
    stored = client.get(_key(namespace, session_nonce, handle))
    if stored is None:
        return None
    try:
        data = json.loads(cipher.decrypt(stored.decode() if isinstance(stored, bytes) else str(stored)))
        return criteria(appointment=data["a"], doctor=data["d"], patient=data["p"])
    except (DecryptionError, ValueError, KeyError, TypeError, InvalidSearch):
        return None  # a key rotated away, or not ours: as if it had lapsed
