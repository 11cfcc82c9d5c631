"""Settings fail fast, naming the variable; URLs must use TLS except to loopback."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from telemed.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os

    for name in list(os.environ):
        if name.startswith("TELEMED_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TELEMED_ZOOM_API_URL", "http://api.zoom.us/v2"),
        ("TELEMED_REDIS_URL", "http://127.0.0.1:6379"),
        ("TELEMED_SECRET_KEYS", "not-a-key"),
        ("TELEMED_SMTP_URL", "smtp://mail.example.org:25"),
        ("TELEMED_SMTP_URL", "ftp://x"),
        ("TELEMED_ZOOM_TIMEOUT_SECONDS", "soon"),
        ("TELEMED_LOG_FORMAT", "xml"),
        ("TELEMED_METRICS_TOKEN", "short"),
        ("TELEMED_REDIS_SENTINELS", "10.0.0.1"),
        ("TELEMED_REDIS_SENTINELS", "10.0.0.1:26379,:26379"),
        ("TELEMED_REDIS_SENTINELS", "10.0.0.1:sentinel"),
        ("TELEMED_REDIS_MASTER_NAME", "no spaces please"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert name in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_sentinels_are_host_port_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEMED_REDIS_SENTINELS", "10.0.0.1:26379, sentinel-b.internal:26380,[fd00::3]:26379")
    assert load_settings().redis_sentinel_addresses == [
        ("10.0.0.1", 26379), ("sentinel-b.internal", 26380), ("fd00::3", 26379)]


def test_a_redis_url_and_sentinels_together_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEMED_REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("TELEMED_REDIS_SENTINELS", "127.0.0.1:26379")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "TELEMED_REDIS_URL and TELEMED_REDIS_SENTINELS are both set" in str(caught.value)
    assert "TELEMED_:" not in str(caught.value)


def test_loopback_http_is_allowed_for_the_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEMED_ZOOM_API_URL", "http://127.0.0.1:9900/v2")
    assert load_settings().zoom_api_url == "http://127.0.0.1:9900/v2"


def test_second_secret_key_is_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEMED_SECRET_KEYS", Fernet.generate_key().decode() + ",bogus")
    with pytest.raises(SettingsError, match="key #2"):
        load_settings()


def test_production_requires_secret_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEMED_ENV", "production")
    with pytest.raises(SettingsError, match="TELEMED_SECRET_KEYS"):
        _ = load_settings().fernet_keys


def test_development_key_is_generated_once_and_private(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(data_dir=tmp_path / "data")
    first = settings.fernet_keys
    assert first == load_settings(data_dir=tmp_path / "data").fernet_keys
    assert ((tmp_path / "data" / "secret.keys").stat().st_mode & 0o777) == 0o600


def test_dotenv_file_is_read(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / ".env").write_text("TELEMED_REDIS_NAMESPACE=fromdotenv\n")
    assert load_settings().redis_namespace == "fromdotenv"


def test_cli_reports_bad_configuration_without_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from telemed.cli import main
    from telemed.settings import reset_settings_cache

    monkeypatch.setenv("TELEMED_ZOOM_API_URL", "http://zoom.example/v2")
    reset_settings_cache()
    result = CliRunner().invoke(main, ["db", "upgrade"])
    reset_settings_cache()
    assert result.exit_code == 2
    assert "TELEMED_ZOOM_API_URL" in result.output
    assert "Traceback" not in result.output
