"""A keyed blind index of the patient's name and e-mail, so an admin can search them.

``appointments.patient_name`` and ``patient_email`` are encrypted (store.types.EncryptedText):
the database cannot compare them. Next to them, ``appointments.patient_index`` holds HMACs
of their normalised parts under a key derived from TELEMED_SECRET_KEYS (never the Fernet
keys themselves: ``Cipher.derived_keys``):

    "k:<tag> <e-mail hash> <name token hash> <name token hash> ... "

- the e-mail address, trimmed and case-folded, hashed whole (``e:`` domain);
- each word of the name, accents removed and case-folded (``n:`` domain);
- ``<tag>`` names the key that made the hashes, so a search can ask for each configured
  key's hashes and rows written before a key rotation stay findable until re-indexed
  (``telemed keys rotate`` re-indexes; see store.patient_search).

Hashes are 64 bits (16 hex digits): collisions between different values within one
clinic's appointments are negligible, and a search also compares the clinic. What the
index gives away to someone who reads the database without the keys is equality: two rows
of the same patient carry the same hash. Without the key the hashes cannot be tested
against guesses of a name or an address.

Plain functions only: no database, no models (store.models computes the column with them).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from telemed.foundation.cipher import Cipher

PURPOSE = "telemed.patient-index.v1"
HASH_CHARS = 16
TAG_CHARS = 8
MAX_NAME_TOKENS = 32
_WORD = re.compile(r"[^\W_]+")


def index_keys(cipher: Cipher) -> list[bytes]:
    """The index keys, newest first (one per TELEMED_SECRET_KEYS key)."""
    return cipher.derived_keys(PURPOSE)


def key_tag(key: bytes) -> str:
    return hmac.new(key, b"tag", hashlib.sha256).hexdigest()[:TAG_CHARS]


def normalise_email(email: str) -> str:
    return email.strip().casefold()


def name_tokens(name: str) -> list[str]:
    """The words of a name, without accents and case-folded, each once, in order."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return list(dict.fromkeys(_WORD.findall(plain)))[:MAX_NAME_TOKENS]


def _hash(key: bytes, domain: str, text: str) -> str:
    return hmac.new(key, f"{domain}:{text}".encode(), hashlib.sha256).hexdigest()[:HASH_CHARS]


def index_value(keys: Sequence[bytes], name: str, email: str) -> str:
    """The column's value for a patient, under the newest key."""
    key = keys[0]
    terms = [_hash(key, "e", normalise_email(email))] + [_hash(key, "n", t) for t in name_tokens(name)]
    return f"k:{key_tag(key)} " + "".join(f"{term} " for term in terms)


@dataclass(frozen=True)
class Probe:
    """What to look for under one key: rows tagged ``tag`` holding every one of ``terms``."""

    tag: str
    terms: tuple[str, ...]

    @property
    def tag_pattern(self) -> str:
        return f"k:{self.tag} %"

    @property
    def term_patterns(self) -> tuple[str, ...]:
        return tuple(f"% {term} %" for term in self.terms)


def looks_like_email(text: str) -> bool:
    return "@" in text


def probes(keys: Sequence[bytes], query: str) -> list[Probe]:
    """One probe per key: the e-mail address's hash, or the hashes of every word of a name.

    Empty when the query holds no word at all (nothing can match it)."""
    if looks_like_email(query):
        return [Probe(key_tag(k), (_hash(k, "e", normalise_email(query)),)) for k in keys]
    tokens = name_tokens(query)
    if not tokens:
        return []
    return [Probe(key_tag(k), tuple(_hash(k, "n", t) for t in tokens)) for k in keys]
