"""Signed, URL-safe tokens keyed from TELEMED_SECRET_KEYS (itsdangerous).

Start links and doctor connect links both carry one. A salt per purpose keeps a token
made for one from ever verifying as the other; signing with every configured key lets
keys rotate without invalidating links already sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from itsdangerous import URLSafeSerializer


class SignedTokenError(Exception):
    """The token is unusable. ``reason`` is ``invalid`` or ``expired``; safe to log and show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def serializer(keys: Sequence[str], salt: str) -> URLSafeSerializer:
    if not keys:
        raise ValueError("at least one signing key is required")
    # itsdangerous signs with the last key and accepts any; ours are listed newest first.
    return URLSafeSerializer(
        list(reversed(list(keys))),
        salt=salt,
        signer_kwargs={"digest_method": hashlib.sha256, "key_derivation": "hmac"},
    )
