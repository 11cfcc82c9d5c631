"""One settings object, built once from the environment and an optional ``.env`` file.

The type is ``foundation.settings.Settings``; here the composition root builds the
instance (``get_settings``), resolving the development key once. Nothing downstream
re-reads the environment.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import SecretStr, ValidationError

from telemed.foundation.settings import Settings, SettingsError
from telemed.foundation.tenancy import DEFAULT_CLINIC, ClinicProfile, ZoomApp
from telemed.foundation.urls import is_loopback_host, require_secure_url

__all__ = ["Settings", "SettingsError", "default_profile", "get_settings", "is_loopback_host", "load_settings",
           "require_secure_url", "reset_settings_cache"]

DEV_KEY_FILE = "secret.keys"


def _development_key(data_dir: Path) -> str:
    path = data_dir / DEV_KEY_FILE
    if path.exists():
        return path.read_text().split(",")[0].strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning pydantic's report into one line per bad variable.

    Without TELEMED_SECRET_KEYS a development key is kept in ``data_dir`` (created here,
    once); in production the keys are required.
    """
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            if not error["loc"]:  # a rule over several variables names them itself
                lines.append(str(error["msg"]).removeprefix("Value error, "))
                continue
            name = "TELEMED_" + "_".join(str(part) for part in error["loc"]).upper()
            lines.append(f"{name}: {error['msg']}")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(lines)) from None
    if settings.secret_keys is not None:
        return settings
    if settings.env == "production":
        raise SettingsError("TELEMED_SECRET_KEYS: required in production (comma-separated Fernet keys)")
    return settings.model_copy(update={"secret_keys": SecretStr(_development_key(settings.data_dir))})


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def reset_settings_cache() -> None:
    """For tests and the demo, which change the environment before building anything."""
    get_settings.cache_clear()


def default_profile(settings: Settings) -> ClinicProfile:
    """The default clinic, as the environment configures it (TELEMED_ZOOM_*, TELEMED_MAIL_FROM,
    TELEMED_WEBHOOK_*, TELEMED_ADMIN_EMAIL, TELEMED_REMINDER_OFFSETS): a single-clinic
    deployment keeps working unchanged as this clinic."""
    s = settings

    def secret(value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value is not None and value.get_secret_value() else None

    account = None
    if s.zoom_account_id and s.zoom_client_id and secret(s.zoom_client_secret):
        account = ZoomApp(s.zoom_client_id, secret(s.zoom_client_secret) or "", s.zoom_account_id)
    oauth = None
    if s.zoom_oauth_client_id and secret(s.zoom_oauth_client_secret):
        oauth = ZoomApp(s.zoom_oauth_client_id, secret(s.zoom_oauth_client_secret) or "")
    return ClinicProfile(
        clinic_id=DEFAULT_CLINIC, name=DEFAULT_CLINIC, zoom_account=account, zoom_oauth=oauth,
        zoom_webhook_secret=secret(s.zoom_webhook_secret_token), mail_from=s.mail_from,
        reminder_offsets=s.reminder_offsets, webhook_url=s.webhook_url, webhook_secret=secret(s.webhook_secret),
        admin_emails=(s.admin_email,) if s.admin_email else (),
    )
