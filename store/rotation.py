"""Key rotation: re-encrypt every stored secret under the newest key.

Every ``EncryptedText`` column of every table (found from the metadata, so a table added
later is covered without touching this file) is read as raw ciphertext and rewritten
under the first key of TELEMED_SECRET_KEYS. A value already under the newest key is left
alone, so a run that was interrupted can simply be run again. Rows are handled in
batches, each batch one transaction.

It also re-indexes the patients' blind index (store.patient_search) under the newest
key, so patients stay findable on the admin page once the old keys are gone.

Once it reports zero values left under old keys, the old keys can be removed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Table, Text, and_, select, tuple_, type_coerce, update
from sqlmodel import SQLModel

import telemed.store.schema  # noqa: F401  (every table module, as for alembic)
from telemed.foundation.cipher import Cipher, DecryptionError
from telemed.store import patient_search
from telemed.store.db import Database
from telemed.store.types import EncryptedText

BATCH = 500


@dataclass
class RotationReport:
    rotated: dict[str, int] = field(default_factory=dict)  # "table.column" → values rewritten
    current: dict[str, int] = field(default_factory=dict)  # already under the newest key
    reindexed: int = 0  # appointments whose patient index was made again under the newest key

    @property
    def total_rotated(self) -> int:
        return sum(self.rotated.values())


def encrypted_columns() -> list[tuple[Table, str]]:
    found = []
    for table in SQLModel.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, EncryptedText):
                found.append((table, column.name))
    return found


def rotate_all(database: Database, keys: Sequence[str], progress: Callable[[str, int], None] | None = None,
               batch: int = BATCH) -> RotationReport:
    """Re-encrypt every encrypted value under ``keys[0]`` (all ``keys`` must decrypt)."""
    cipher = Cipher(keys)
    newest = Fernet(keys[0])
    report = RotationReport()
    for table, name in encrypted_columns():
        label = f"{table.name}.{name}"
        rotated, current = _rotate_column(database, table, name, cipher, newest, batch)
        report.rotated[label], report.current[label] = rotated, current
        if progress is not None:
            progress(label, rotated)
    report.reindexed = patient_search.reindex(database, cipher, newest_only=True, batch=batch)
    return report


def _rotate_column(database: Database, table: Table, name: str, cipher: Cipher, newest: Fernet,
                   batch: int) -> tuple[int, int]:
    keys = list(table.primary_key.columns)
    raw = type_coerce(table.c[name], Text)  # the ciphertext, not the decrypted value
    rotated = current = 0
    last: tuple[object, ...] | None = None
    while True:
        statement = select(*keys, raw).where(table.c[name].is_not(None)).order_by(*keys).limit(batch)
        if last is not None:
            statement = statement.where(tuple_(*keys) > tuple_(*last))
        with database.engine.begin() as connection:
            rows = connection.execute(statement).all()
            for row in rows:
                pk, token = tuple(row[: len(keys)]), row[len(keys)]
                if _is_newest(newest, token):
                    current += 1
                    continue
                try:
                    fresh = cipher.rotate(token)
                except DecryptionError:
                    raise DecryptionError(f"{table.name}.{name} of row {pk}: not encrypted under any "
                                          "configured key (was a key removed too early?)") from None
                where = and_(*(column == value for column, value in zip(keys, pk, strict=True)))
                connection.execute(update(table).where(where).values({name: type_coerce(fresh, Text)}))
                rotated += 1
        if len(rows) < batch:
            return rotated, current
        last = tuple(rows[-1][: len(keys)])


def _is_newest(newest: Fernet, token: str) -> bool:
    try:
        newest.decrypt(token.encode("ascii"))
    except InvalidToken:
        return False
    return True
