"""The clinics' own tables: who each clinic is, its ingress keys, refused cross-clinic events.

Secrets (Zoom app secrets, webhook secrets, ingress HMAC secrets) are EncryptedText like
every other secret in the store, and left out of the rows' ``repr``. The default clinic has no row unless an operator adds
settings for it: its profile comes from the environment (``telemed.settings``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from telemed.foundation.tenancy import MAX_CLINIC_ID_LENGTH, MAX_KEY_LENGTH
from telemed.store.models import _ts, utcnow
from telemed.store.types import EncryptedText

CLINIC_ACTIVE = "active"
CLINIC_SUSPENDED = "suspended"
CLINIC_DELETING = "deleting"  # being erased (store.clinic_erasure): closed, its data on the way out
CLINIC_DELETED = "deleted"  # a tombstone: the id is never given again, nothing else is kept


class Clinic(SQLModel, table=True):
    __tablename__ = "clinics"

    id: str = Field(primary_key=True, max_length=MAX_CLINIC_ID_LENGTH)
    name: str = Field(max_length=200)
    status: str = Field(default=CLINIC_ACTIVE, max_length=16)
    zoom_account_id: str | None = Field(default=None, max_length=128)
    zoom_client_id: str | None = Field(default=None, max_length=128)
    zoom_client_secret: str | None = Field(default=None, repr=False, sa_column=Column(EncryptedText(), nullable=True))
    zoom_oauth_client_id: str | None = Field(default=None, max_length=128)
    zoom_oauth_client_secret: str | None = Field(default=None, repr=False, sa_column=Column(EncryptedText(), nullable=True))
    zoom_webhook_secret: str | None = Field(default=None, repr=False, sa_column=Column(EncryptedText(), nullable=True))
    mail_from: str | None = Field(default=None, max_length=320)
    mail_reply_to: str | None = Field(default=None, max_length=320)
    mail_display_name: str | None = Field(default=None, max_length=200)
    reminder_offsets: str | None = Field(default=None, max_length=100)
    webhook_url: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))
    webhook_secret: str | None = Field(default=None, repr=False, sa_column=Column(EncryptedText(), nullable=True))
    admin_emails: str = Field(default="", sa_column=Column(Text(), nullable=False, server_default=""))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    deleted_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class ClinicIngressKey(SQLModel, table=True):
    """One HMAC secret a clinic's booking system signs events with, found by its key id
    (``X-Telemed-Key-Id``). At most two are active per clinic: rotation adds the new one,
    the booking system switches, then the old one is retired."""

    __tablename__ = "clinic_ingress_keys"

    key_id: str = Field(primary_key=True, max_length=64)
    clinic_id: str = Field(foreign_key="clinics.id", max_length=MAX_CLINIC_ID_LENGTH, index=True)
    secret: str = Field(repr=False, sa_column=Column(EncryptedText(), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    last_used_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    retired_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class IngressRefusal(SQLModel, table=True):
    """An event refused because its signer's clinic is not the clinic it names (403).

    Kept for the signer's operators: the event id and the clinic named, never the payload.
    """

    __tablename__ = "ingress_refusals"

    id: int | None = Field(default=None, primary_key=True)
    signer_clinic_id: str = Field(max_length=MAX_CLINIC_ID_LENGTH, index=True)
    key_id: str | None = Field(default=None, max_length=64)
    named_clinic_id: str = Field(max_length=128)
    event_id: str | None = Field(default=None, max_length=MAX_KEY_LENGTH)
    reason: str = Field(max_length=200)
    at: datetime = Field(default_factory=utcnow, sa_column=_ts())
