"""The settings type: every knob is a ``TELEMED_*`` variable (README, Configuration).

Only the type lives here; ``telemed.settings`` builds the one instance a process uses,
from the environment and an optional ``.env`` file, and resolves the development key.
A missing or malformed value fails fast with a :class:`SettingsError` naming the variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from telemed.foundation.urls import is_loopback_host, require_secure_url


class SettingsError(RuntimeError):
    """A configuration value is missing or malformed; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TELEMED_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path(".telemed")

    redis_url: str | None = None
    # High availability: Sentinels (host:port, comma-separated) name the current primary
    # of the group ``redis_master_name``; every Redis user follows a failover. Instead of
    # TELEMED_REDIS_URL, not beside it.
    redis_sentinels: str | None = None
    redis_master_name: str = Field(default="telemed", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    redis_password: SecretStr | None = None  # the primary's and replicas' (with Sentinels)
    redis_sentinel_password: SecretStr | None = None
    redis_tls: bool = False  # with Sentinels: TLS to the Sentinels and the primary
    redis_socket_timeout_seconds: float = Field(default=15.0, gt=0, le=300)
    redis_namespace: str = Field(default="telemed", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    embedded_redis_port: int = Field(default=16379, ge=1, le=65535)
    database_url: str | None = None
    secret_keys: SecretStr | None = None

    ingress_secret: SecretStr | None = None
    public_url: str | None = None

    zoom_api_url: str = "https://api.zoom.us/v2"
    zoom_oauth_url: str = "https://zoom.us/oauth"
    zoom_account_id: str | None = None
    zoom_client_id: str | None = None
    zoom_client_secret: SecretStr | None = None
    zoom_oauth_client_id: str | None = None
    zoom_oauth_client_secret: SecretStr | None = None
    zoom_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    zoom_meeting_authentication: bool = False
    # registrant: the patient is a Zoom registrant with a join link of their own (a host
    # that cannot use registration falls back to "link", flagged); link: the meeting's
    # passcode link, as before registration existed.
    patient_join: Literal["registrant", "link"] = "registrant"

    smtp_url: SecretStr | None = None
    smtp_timeout_seconds: float = Field(default=15.0, gt=0, le=300)
    mail_dir: Path | None = None
    mail_from: str = "telemed <no-reply@telemed.invalid>"
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    admin_email: str | None = None

    # Zoom production adapter (doctor OAuth, token refresh, rate limits)
    zoom_token_refresh_margin_seconds: int = Field(default=300, ge=0, le=3000)
    zoom_create_per_second: float = Field(default=20.0, gt=0)  # Pro plan, "Medium" APIs
    zoom_light_per_second: float = Field(default=30.0, gt=0)  # Pro plan, "Light" APIs
    zoom_daily_calls_per_host: int = Field(default=100, ge=1)  # create/update per host per UTC day
    connect_link_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)

    # Notifications
    reminder_offsets: str = Field(default="24h,15m", pattern=r"^\s*(\d+[smhd]\s*,?\s*)*$")
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # First retry delay of a failed mail or webhook; doubles per attempt (outbox retries).
    notification_retry_base_seconds: float = Field(default=15.0, gt=0, le=3600)

    # Ingress and operations
    ingress_max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    ingress_tolerance_seconds: int = Field(default=300, ge=1)
    zoom_webhook_secret_token: SecretStr | None = None
    zoom_meeting_deleted_policy: Literal["reprovision", "attention"] = "reprovision"
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_bind: str = "127.0.0.1"
    # The web process's /metrics answers only "Authorization: Bearer <this>"; unset: 404.
    metrics_token: SecretStr | None = None
    scheduler_interval_seconds: float = Field(default=15.0, gt=0)
    # How long the active scheduler's lock outlives its last renewal: a standby takes over
    # a crashed or cut-off active instance after this (and never before three passes).
    scheduler_lock_seconds: float = Field(default=30.0, ge=3)
    reconcile_grace_seconds: float = Field(default=30.0, ge=0)  # rows younger than this are left to the queue

    # Fairness between clinics (workers/queue/clinic_gate.py, docs/architecture.md).
    # At most this many of one clinic's messages queued or running in the shared queues;
    # the rest wait in the clinic's own list. 0 turns the gate off.
    clinic_in_flight: int = Field(default=8, ge=0, le=10_000)
    # How long a slot stays taken without its message being acknowledged: a slot whose
    # message was lost is given back after this. Longer than a message may take queued
    # and running (the worker's time limit is 5 minutes).
    clinic_lease_seconds: float = Field(default=600.0, ge=1, le=86_400)
    # A worker thread waits at most this long on a Zoom pacer; a longer wait defers the
    # message (queued again for when the slot is due) and frees the thread.
    zoom_pacing_hold_seconds: float = Field(default=0.25, ge=0, le=5)

    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("zoom_api_url", "zoom_oauth_url")
    @classmethod
    def _zoom_urls_use_tls(cls, value: str) -> str:
        return require_secure_url(value, what="the URL")

    @field_validator("webhook_url", "public_url")
    @classmethod
    def _optional_urls_use_tls(cls, value: str | None) -> str | None:
        return None if not value else require_secure_url(value, what="the URL")

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value and urlsplit(value).scheme not in {"redis", "rediss", "unix"}:
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value or None

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinels(cls, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        parse_sentinels(value)  # raises ValueError naming the bad entry
        return value.strip()

    @model_validator(mode="after")
    def _one_way_to_redis(self) -> Settings:
        if self.redis_sentinels and self.redis_url:
            raise ValueError("TELEMED_REDIS_URL and TELEMED_REDIS_SENTINELS are both set; set one "
                             "(with Sentinels, the primary is whichever they name)")
        return self

    @field_validator("smtp_url")
    @classmethod
    def _smtp_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in {"smtp", "smtps", "smtp+starttls"}:
            raise ValueError("must start with smtp://, smtps:// or smtp+starttls://")
        if parts.scheme == "smtp" and not is_loopback_host(parts.hostname):
            raise ValueError("plain smtp:// is only allowed to loopback; use smtps:// or smtp+starttls://")
        return value

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if len(value.get_secret_value().strip()) < 16:
            raise ValueError("must be at least 16 characters (a random token, e.g. `openssl rand -hex 32`)")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("secret_keys")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        for position, key in enumerate(split_keys(value.get_secret_value()), start=1):
            try:
                Fernet(key)
            except (ValueError, TypeError):
                raise ValueError(f"key #{position} is not a Fernet key (32 url-safe base64 bytes)") from None
        return value

    # Derived values -------------------------------------------------------------------

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'telemed.db').resolve()}"

    @property
    def resolved_mail_dir(self) -> Path:
        return self.mail_dir or self.data_dir / "mail"

    @property
    def fernet_keys(self) -> list[str]:
        """Newest first. ``load_settings`` fills them in (a development key, when unset)."""
        if self.secret_keys is None:
            raise SettingsError("TELEMED_SECRET_KEYS: no keys (settings not built by load_settings)")
        return split_keys(self.secret_keys.get_secret_value())

    @property
    def redis_sentinel_addresses(self) -> list[tuple[str, int]]:
        return parse_sentinels(self.redis_sentinels) if self.redis_sentinels else []

    @property
    def zoom_s2s_configured(self) -> bool:
        return bool(self.zoom_account_id and self.zoom_client_id and self.zoom_client_secret)


def parse_sentinels(raw: str) -> list[tuple[str, int]]:
    """``host:port,host:port`` (``[v6]:port`` too) as pairs; a ValueError names a bad entry."""
    addresses = []
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        host, _, port = entry.rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{entry!r} is not host:port")
        addresses.append((host, int(port)))
    if not addresses:
        raise ValueError("no Sentinel addresses (host:port, comma-separated)")
    return addresses


def split_keys(raw: str) -> list[str]:
    return [key.strip() for key in raw.split(",") if key.strip()]
