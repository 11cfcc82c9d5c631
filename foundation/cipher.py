"""Field encryption at rest: MultiFernet over the keys in TELEMED_SECRET_KEYS.

The first key encrypts; every key decrypts, so keys rotate by prepending a new one and
re-encrypting (``rotate``) before the old one is dropped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class DecryptionError(RuntimeError):
    """A stored value was not encrypted under any configured key."""


class NoCipher(RuntimeError):
    """An encrypted column was used on a database opened without a cipher."""


class Cipher:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one Fernet key is required")
        self._fernet = MultiFernet([Fernet(key) for key in keys])
        self._keys = [base64.urlsafe_b64decode(key) for key in keys]
        self._derived: dict[str, tuple[bytes, ...]] = {}

    def derived_keys(self, purpose: str) -> list[bytes]:
        """One key per configured key (newest first) for ``purpose``, e.g. a blind index's
        HMAC. Never the Fernet keys themselves: a value keyed for one purpose says nothing
        usable for another, and a new first key gives a new first derived key."""
        derived = self._derived.get(purpose)
        if derived is None:
            derived = tuple(hmac.new(key, purpose.encode(), hashlib.sha256).digest() for key in self._keys)
            self._derived[purpose] = derived
        return list(derived)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise DecryptionError("stored value does not decrypt under any configured key") from None

    def rotate(self, token: str) -> str:
        """Re-encrypt under the newest key (no-op in effect when already newest)."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise DecryptionError("stored value does not decrypt under any configured key") from None
