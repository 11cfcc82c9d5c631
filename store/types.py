"""Column types: UTC timestamps that stay aware, and encrypted text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from telemed.foundation.cipher import Cipher, NoCipher

# The cipher lives on the engine's dialect (``store.db.Database`` puts it there): a column
# type sees only the dialect, and a process-wide cipher would be wiring at import.
CIPHER_ATTRIBUTE = "telemed_cipher"


def dialect_cipher(dialect: Dialect) -> Cipher:
    cipher = getattr(dialect, CIPHER_ATTRIBUTE, None)
    if cipher is None:
        raise NoCipher("this database was opened without a cipher: pass Database(url, cipher=...)")
    return cipher


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC everywhere (SQLite has no zones); read back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; give a timezone")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class EncryptedText(TypeDecorator[str]):
    """Fernet-encrypted at rest under the newest key; any configured key decrypts."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else dialect_cipher(dialect).encrypt(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else dialect_cipher(dialect).decrypt(value)
