"""Searching patients by name or e-mail through their blind index, and keeping it whole.

Why a blind index and not decrypting to filter: an admin looks a patient up among all of
their clinic's appointments, past ones included. Decrypting every row of a clinic on each
search grows with the clinic's history (and would have to stop at some bound, silently
missing older rows); the index makes the search one SQL query that the database answers
with the clinic's other filters, sorting and paging, and nothing is decrypted but the
page shown. What it costs: exact words only (a whole word of the name, any case and
accents, any order; a whole e-mail address), and the equality leak described in
store.patient_index.

Rows whose index is missing (written before migration 0010, or by a process that wrote
with SQL rather than the ORM) or made under a key no longer configured are indexed by
``reindex``: the admin page runs it for the clinic before each search, and
``telemed keys rotate`` runs it for every row under the newest key. It reads the
ciphertext itself and decrypts with the cipher it is given, like store.rotation, and
writes a row only if its name and e-mail are still what it read.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text, and_, false, not_, or_, select, type_coerce, update
from sqlalchemy.sql.elements import ColumnElement

from telemed.foundation.cipher import Cipher, DecryptionError
from telemed.store import patient_index
from telemed.store.db import Database
from telemed.store.models import Appointment

BATCH = 500
_TABLE: Any = Appointment.__table__  # type: ignore[attr-defined]
_INDEX = _TABLE.c.patient_index


def matches(cipher: Cipher, query: str) -> ColumnElement[bool]:
    """A WHERE clause: the patient's e-mail is ``query``, or their name holds every word of it."""
    found = patient_index.probes(patient_index.index_keys(cipher), query)
    if not found:
        return false()
    return or_(*(and_(_INDEX.like(p.tag_pattern), *(_INDEX.like(t) for t in p.term_patterns)) for p in found))


def _not_under(tags: list[str]) -> ColumnElement[bool]:
    return or_(_INDEX.is_(None), and_(*(not_(_INDEX.like(f"k:{tag} %")) for tag in tags)))


def reindex(database: Database, cipher: Cipher, *, clinic_id: str | None = None, newest_only: bool = False,
            batch: int = BATCH) -> int:
    """Index the rows that need it; returns how many were written.

    A row needs it when it has no index, or when its index was made under none of the
    cipher's keys (``newest_only``: under any key but the newest, as after a rotation).
    """
    keys = patient_index.index_keys(cipher)
    tags = [patient_index.key_tag(k) for k in (keys[:1] if newest_only else keys)]
    name = type_coerce(_TABLE.c.patient_name, Text)  # the ciphertext, decrypted here
    email = type_coerce(_TABLE.c.patient_email, Text)
    where = _not_under(tags)
    if clinic_id is not None:
        where = and_(where, _TABLE.c.clinic_id == clinic_id)
    written, last = 0, None
    while True:
        statement = select(_TABLE.c.id, name, email).where(where).order_by(_TABLE.c.id).limit(batch)
        if last is not None:
            statement = statement.where(_TABLE.c.id > last)
        with database.engine.begin() as connection:
            rows = connection.execute(statement).all()
            for key, name_token, email_token in rows:
                try:
                    value = patient_index.index_value(keys, cipher.decrypt(name_token), cipher.decrypt(email_token))
                except DecryptionError:
                    raise DecryptionError(f"appointments.patient_name/email of row {key!r}: not encrypted under "
                                          "any configured key") from None
                # Only if the patient is still the one read: a concurrent write indexed itself.
                result = connection.execute(
                    update(_TABLE).where(_TABLE.c.id == key, name == name_token, email == email_token)
                    .values(patient_index=value))
                written += result.rowcount
        if len(rows) < batch:
            return written
        last = rows[-1][0]
