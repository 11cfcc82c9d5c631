"""A clinic's ingress keys (the HMAC secrets its booking system signs events with) and the
events refused because their signer named another clinic.

A key is found by its public id (``ck_<16 hex>``, sent as ``X-Telemed-Key-Id``); its
secret is 256 random bits, shown once when made and stored encrypted (it must be: HMAC
needs the secret itself, not a hash). At most two keys of a clinic are active at a time,
which is what rotation without downtime needs: add the new key, switch the booking
system over, retire the old one (docs/ingress.md).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from telemed.store.clinic_tables import Clinic, ClinicIngressKey, IngressRefusal
from telemed.store.clinics import live_clinic
from telemed.store.models import utcnow

MAX_ACTIVE_KEYS = 2
KEY_ID_PATTERN = re.compile(r"^ck_[0-9a-f]{16}$")
# last_used_at is for people ("is the old key still in use?"): to the minute is enough,
# and it saves a write per event.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TooManyKeys(ValueError):
    """The clinic already has two active keys."""


@dataclass(frozen=True)
class KeyInfo:
    """A key as people see it: never its secret."""

    key_id: str
    clinic_id: str
    created_at: datetime
    last_used_at: datetime | None
    retired_at: datetime | None

    @property
    def active(self) -> bool:
        return self.retired_at is None


@dataclass(frozen=True, repr=False)
class SigningKey:
    """What the door needs to check a signature: the secret, its clinic and the clinic's state."""

    key_id: str
    clinic_id: str
    secret: str
    retired: bool
    clinic_status: str
    last_used_at: datetime | None

    def __repr__(self) -> str:  # the secret never reaches a log or a traceback
        return f"SigningKey(key_id={self.key_id!r}, clinic_id={self.clinic_id!r})"


def _info(row: ClinicIngressKey) -> KeyInfo:
    return KeyInfo(row.key_id, row.clinic_id, row.created_at, row.last_used_at, row.retired_at)


def add_key(session: Session, clinic_id: str) -> tuple[KeyInfo, str]:
    """A new active key for the clinic, and its secret (returned this once, stored encrypted).

    Refused with :class:`TooManyKeys` when two are active already; ``store.clinics.ClinicNotFound``
    for an unknown or deleted clinic. The clinic's row is locked first, so two adds at
    once cannot both pass the count.
    """
    live_clinic(session, clinic_id, for_update=True)
    active = session.exec(
        select(func.count()).select_from(ClinicIngressKey)
        .where(col(ClinicIngressKey.clinic_id) == clinic_id, col(ClinicIngressKey.retired_at).is_(None))
    ).one()
    if active >= MAX_ACTIVE_KEYS:
        raise TooManyKeys(f"clinic {clinic_id!r} has {active} active ingress keys (at most {MAX_ACTIVE_KEYS}); "
                          "retire one first: telemed clinics ingress-key retire KEY_ID")
    secret = secrets.token_hex(32)
    row = ClinicIngressKey(key_id=f"ck_{secrets.token_hex(8)}", clinic_id=clinic_id, secret=secret)
    session.add(row)
    session.flush()
    return _info(row), secret


def retire_key(session: Session, key_id: str) -> KeyInfo | None:
    """Retire a key at once (events signed with it are refused from now on); None when
    there is no such active key."""
    row = session.exec(select(ClinicIngressKey).where(col(ClinicIngressKey.key_id) == key_id)
                       .with_for_update()).first()
    if row is None or row.retired_at is not None:
        return None
    row.retired_at = utcnow()
    session.add(row)
    return _info(row)


def list_keys(session: Session, clinic_id: str) -> list[KeyInfo]:
    """The clinic's keys, active and retired, oldest first."""
    rows = session.exec(select(ClinicIngressKey).where(col(ClinicIngressKey.clinic_id) == clinic_id)
                        .order_by(col(ClinicIngressKey.created_at), col(ClinicIngressKey.key_id)))
    return [_info(row) for row in rows]


def find_key(session: Session, key_id: str) -> SigningKey | None:
    """The key with that id and its clinic's state, or None (no lookup for a malformed id)."""
    if not KEY_ID_PATTERN.match(key_id):
        return None
    found = session.exec(select(ClinicIngressKey, Clinic.status)
                         .join(Clinic, col(Clinic.id) == col(ClinicIngressKey.clinic_id))
                         .where(col(ClinicIngressKey.key_id) == key_id)).first()
    if found is None:
        return None
    row, status = found
    return SigningKey(row.key_id, row.clinic_id, row.secret, row.retired_at is not None, status, row.last_used_at)


def use_is_due(key: SigningKey, now: datetime | None = None) -> bool:
    """Whether ``key``'s last use is older than the resolution kept (most events: no)."""
    now = now or utcnow()
    return key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION


def note_use(session: Session, key_id: str, now: datetime | None = None) -> None:
    """Record that the key signed an accepted request (callers ask ``use_is_due`` first)."""
    row = session.get(ClinicIngressKey, key_id)
    if row is not None:
        row.last_used_at = now or utcnow()
        session.add(row)


def record_refusal(session: Session, *, signer_clinic_id: str, key_id: str | None, named_clinic_id: str,
                   event_id: str | None, reason: str) -> IngressRefusal:
    """An event refused because its signer named another clinic: who, which clinic, which
    event id; never the payload."""
    row = IngressRefusal(signer_clinic_id=signer_clinic_id, key_id=key_id, named_clinic_id=named_clinic_id[:128],
                         event_id=event_id, reason=reason[:200])
    session.add(row)
    session.flush()
    return row


def refusals(session: Session, clinic_id: str, limit: int = 100) -> list[IngressRefusal]:
    """The clinic's refused events (as signer), newest first."""
    return list(session.exec(select(IngressRefusal).where(col(IngressRefusal.signer_clinic_id) == clinic_id)
                             .order_by(col(IngressRefusal.at).desc(), col(IngressRefusal.id).desc()).limit(limit)))


def active_counts(session: Session) -> dict[str, int]:
    """Active keys per clinic (clinics without any are absent)."""
    rows = session.exec(select(ClinicIngressKey.clinic_id, func.count()).where(col(ClinicIngressKey.retired_at).is_(None))
                        .group_by(col(ClinicIngressKey.clinic_id)))
    return {clinic_id: count for clinic_id, count in rows}
