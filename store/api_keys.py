"""API keys: shown once, stored as a SHA-256 hash, looked up by a short public prefix.

Keys are 256 bits from ``secrets``, so a fast hash is enough (no brute force can walk
that space); the prefix lets us find the row without comparing every hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Field, Session, SQLModel, col, select

from telemed.foundation.tenancy import DEFAULT_CLINIC, MAX_CLINIC_ID_LENGTH, check_clinic_id, scoped
from telemed.store.models import _ts, utcnow

ROLE_PATTERN = re.compile(r"^(admin|booking|doctor:[A-Za-z0-9._:-]{1,128})$")
KEY_PATTERN = re.compile(r"^tmk_([a-z0-9]{10})_([A-Za-z0-9_-]{43})$")


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    prefix: str = Field(max_length=16, unique=True)
    key_hash: str = Field(max_length=64)
    role: str = Field(max_length=140)  # admin | booking | doctor:<id> (the clinic's own doctor id)
    # The clinic whose data the key may reach (foundation.tenancy); nothing of another's.
    clinic_id: str = Field(default=DEFAULT_CLINIC, max_length=MAX_CLINIC_ID_LENGTH, index=True)
    label: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    last_used_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


@dataclass(frozen=True)
class Principal:
    """Who is asking: an admin, the booking system, or one doctor, of one clinic."""

    role: str  # admin | booking | doctor
    doctor_id: str | None = None  # the clinic's own id of the doctor
    key_prefix: str | None = None
    clinic_id: str = DEFAULT_CLINIC

    @property
    def doctor_key(self) -> str | None:
        """The doctor's key inside telemed (``foundation.tenancy.scoped``)."""
        return scoped(self.clinic_id, self.doctor_id) if self.doctor_id else None

    @property
    def label(self) -> str:
        return f"{self.role}:{self.doctor_id}" if self.doctor_id else self.role

    @classmethod
    def from_role(cls, role: str, key_prefix: str | None = None, clinic_id: str = DEFAULT_CLINIC) -> Principal:
        if role.startswith("doctor:"):
            return cls("doctor", role.split(":", 1)[1], key_prefix, clinic_id)
        return cls(role, None, key_prefix, clinic_id)


def _hash(secret_part: str) -> str:
    return hashlib.sha256(secret_part.encode()).hexdigest()


def create_key(session: Session, role: str, label: str | None = None, *,
               clinic_id: str = DEFAULT_CLINIC) -> tuple[ApiKey, str]:
    """Make a key for ``clinic_id``. The plaintext is returned once and never stored."""
    if not ROLE_PATTERN.match(role):
        raise ValueError("role must be admin, booking or doctor:<doctor id>")
    check_clinic_id(clinic_id)
    prefix = secrets.token_hex(5)
    secret_part = secrets.token_urlsafe(32)
    row = ApiKey(prefix=prefix, key_hash=_hash(secret_part), role=role, label=label,
                 clinic_id=check_clinic_id(clinic_id))
    session.add(row)
    session.flush()
    return row, f"tmk_{prefix}_{secret_part}"


def authenticate(session: Session, presented: str) -> Principal | None:
    match = KEY_PATTERN.match(presented.strip())
    if not match:
        return None
    prefix, secret_part = match.groups()
    row = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, _hash(secret_part)):
        return None
    row.last_used_at = utcnow()
    session.add(row)
    return Principal.from_role(row.role, prefix, row.clinic_id)


def revoke_key(session: Session, prefix: str) -> bool:
    row = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    session.add(row)
    return True


def list_keys(session: Session, clinic_id: str | None = None) -> list[ApiKey]:
    """Every key, or only ``clinic_id``'s."""
    statement = select(ApiKey).order_by(col(ApiKey.id))
    if clinic_id is not None:
        statement = statement.where(col(ApiKey.clinic_id) == clinic_id)
    return list(session.exec(statement))
