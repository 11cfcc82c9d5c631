"""The default clinic's profile comes from the environment's settings, as before clinics."""

from __future__ import annotations

from cryptography.fernet import Fernet

from telemed.settings import default_profile, load_settings
from telemed.store.notifications import audit_principal


def _settings(**values: object):  # type: ignore[no-untyped-def]
    return load_settings(secret_keys=Fernet.generate_key().decode(), **values)


def test_everything_the_environment_configures() -> None:
    profile = default_profile(_settings(
        zoom_account_id="acc", zoom_client_id="cid", zoom_client_secret="s2s-canary", zoom_oauth_client_id="oid",
        zoom_oauth_client_secret="oauth-canary", zoom_webhook_secret_token="zws", mail_from="Ops <ops@x.example>",
        webhook_url="https://booking.example/hook", webhook_secret="hook-canary", reminder_offsets="2h",
        admin_email=" a@x.example, b@x.example ,",
    ))
    assert (profile.clinic_id, profile.status) == ("default", "active")
    assert profile.zoom_account is not None and profile.zoom_oauth is not None
    assert (profile.zoom_account.account_id, profile.zoom_account.client_id,
            profile.zoom_account.client_secret) == ("acc", "cid", "s2s-canary")
    assert (profile.zoom_oauth.client_id, profile.zoom_oauth.client_secret) == ("oid", "oauth-canary")
    assert profile.zoom_oauth.account_id is None
    assert profile.zoom_webhook_secret == "zws" and profile.webhook_secret == "hook-canary"
    assert profile.mail_from == "Ops <ops@x.example>" and profile.reminder_offsets == "2h"
    assert profile.webhook_url == "https://booking.example/hook"
    assert profile.admin_emails == ("a@x.example", "b@x.example")
    assert profile.zoom_account_scope == "account:acc"
    assert "canary" not in repr(profile) + repr(profile.zoom_account) + repr(profile.zoom_oauth)


def test_nothing_configured() -> None:
    profile = default_profile(_settings())
    assert profile.zoom_account is None and profile.zoom_oauth is None and profile.admin_emails == ()
    assert profile.webhook_secret is None and profile.zoom_webhook_secret is None
    # Half an app is no app (as zoom_s2s_configured says).
    assert default_profile(_settings(zoom_account_id="acc", zoom_client_id="cid")).zoom_account is None


def test_the_audit_principal_keeps_the_clinic_and_the_key() -> None:
    assert audit_principal("doctor:D-1", "north", "ab12cd34ef") == "doctor:D-1 clinic:north key:ab12cd34ef"
    assert audit_principal("admin", "default") == "admin clinic:default"
    long = audit_principal("doctor:" + "x" * 128, "c" * 40, "ab12cd34ef")
    assert len(long) == 160 and long.endswith(" clinic:" + "c" * 40 + " key:ab12cd34ef") and "…" in long
