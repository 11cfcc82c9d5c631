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

__all__ = ["Settings", "SettingsError", "admin_emails", "default_profile", "get_settings", "is_loopback_host", "load_settings", "require_secure_url",
           "reset_settings_cache"]

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


def admin_emails(settings: Settings) -> tuple[str, ...]:
    """TELEMED_ADMIN_EMAIL: one address, or several separated by commas."""
    raw = settings.admin_email or ""
    return tuple(address.strip() for address in raw.split(",") if address.strip())


def default_profile(settings: Settings) -> ClinicProfile:
    """The default clinic, as the environment configures it (the deployment before clinics).

    Its Zoom apps, webhook secret, sender, reminder offsets, status webhook and admins are
    the TELEMED_* settings of before; its ingress secret stays TELEMED_INGRESS_SECRET
    (``web.ingress``). Every other clinic's profile comes from the store.
    """
    account = None
    if settings.zoom_account_id and settings.zoom_client_id and settings.zoom_client_secret:
        account = ZoomApp(client_id=settings.zoom_client_id,
                          client_secret=settings.zoom_client_secret.get_secret_value(),
                          account_id=settings.zoom_account_id)
    oauth = None
    if settings.zoom_oauth_client_id and settings.zoom_oauth_client_secret:
        oauth = ZoomApp(client_id=settings.zoom_oauth_client_id,
                        client_secret=settings.zoom_oauth_client_secret.get_secret_value())

    def secret(value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value is not None else None

    return ClinicProfile(
        clinic_id=DEFAULT_CLINIC, name="default", zoom_account=account, zoom_oauth=oauth,
        zoom_webhook_secret=secret(settings.zoom_webhook_secret_token), mail_from=settings.mail_from,
        reminder_offsets=settings.reminder_offsets, webhook_url=settings.webhook_url,
        webhook_secret=secret(settings.webhook_secret), admin_emails=admin_emails(settings),
    )
