"""Mail channel configuration and error classification (no network)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from telemed.settings import load_settings
from telemed.workers.notifier.mail import (
    EmlDirectoryChannel,
    MailChannel,
    PermanentDeliveryError,
    SmtpChannel,
    TransientDeliveryError,
    _by_code,
    _classify_refusals,
    build_mail_channel,
)

PASSWORD = "p@ss:w/rd%!"
ENCODED = "p%40ss%3Aw%2Frd%25%21"


@pytest.mark.parametrize(
    "url, port",
    [
        ("smtp://127.0.0.1", 25),
        ("smtp://localhost:2525", 2525),
        ("smtp://[::1]:2525", 2525),
        ("smtps://mail.example.org", 465),
        ("smtp+starttls://mail.example.org", 587),
        ("smtp+starttls://mail.example.org:2587/", 2587),
    ],
)
def test_urls_and_default_ports(url: str, port: int) -> None:
    assert SmtpChannel(url, 5).port == port


def test_credentials_are_url_decoded_and_never_shown() -> None:
    channel = SmtpChannel(f"smtps://mailer%40clinic.example:{ENCODED}@mail.example.org", 5)
    assert channel._username == "mailer@clinic.example"
    assert channel._password == PASSWORD
    assert PASSWORD not in repr(channel) and ENCODED not in repr(channel)
    assert "mailer" not in repr(channel)


@pytest.mark.parametrize(
    "url, message",
    [
        ("smtp://mail.example.org", "loopback"),
        ("smtp://10.0.0.5:25", "loopback"),
        (f"http://user:{ENCODED}@mail.example.org", "smtp://"),
        ("smtps://", "no host"),
        (f"smtps://u:{ENCODED}@mail.example.org:99999", "port"),
        ("smtps://mail.example.org/path", "path"),
        ("smtps://mail.example.org?tls=off", "query"),
    ],
)
def test_bad_urls_are_refused_without_echoing_them(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        SmtpChannel(url, 5)
    assert ENCODED not in str(caught.value) and PASSWORD not in str(caught.value)


def test_default_tls_context_verifies_and_requires_tls12() -> None:
    context = SmtpChannel("smtps://mail.example.org", 5)._context
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_a_non_verifying_context_is_refused() -> None:
    lax = ssl.create_default_context()
    lax.check_hostname = False
    lax.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError, match="verify"):
        SmtpChannel("smtps://mail.example.org", 5, ssl_context=lax)
    old = ssl.create_default_context()
    old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with pytest.raises(ValueError, match=r"TLS 1\.2"):
        SmtpChannel("smtps://mail.example.org", 5, ssl_context=old)


@pytest.mark.parametrize(
    "code, kind",
    [
        (421, TransientDeliveryError),
        (451, TransientDeliveryError),
        (452, TransientDeliveryError),
        (530, PermanentDeliveryError),
        (550, PermanentDeliveryError),
        (554, PermanentDeliveryError),
    ],
)
def test_reply_codes_are_classified(code: int, kind: type) -> None:
    error = _by_code("send", code, b"5.1.1 <grace@example.org>: no such user")
    assert isinstance(error, kind) and error.smtp_code == code
    assert "grace@example.org" not in str(error)  # server replies echo addresses


def test_enhanced_status_is_kept_but_not_the_reply_text() -> None:
    assert str(_by_code("recipient", 550, b"5.1.1 <g@x.org> unknown")) == (
        "SMTP server refused (recipient): 550 5.1.1"
    )


def test_mixed_refusals_are_transient() -> None:
    error = _classify_refusals({"a@x.org": (550, b"no"), "b@x.org": (450, b"later")})
    assert isinstance(error, TransientDeliveryError) and error.smtp_code == 450


def test_build_mail_channel_without_smtp_writes_eml(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, smtp_url=None, mail_dir=None)
    channel = build_mail_channel(settings)
    assert isinstance(channel, EmlDirectoryChannel)
    assert channel.directory == tmp_path / "mail"
    assert isinstance(channel, MailChannel)


def test_build_mail_channel_with_smtp(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        smtp_url=f"smtp+starttls://mailer:{ENCODED}@mail.example.org",
        smtp_timeout_seconds=7,
    )
    channel = build_mail_channel(settings)
    assert isinstance(channel, SmtpChannel)
    assert (channel.host, channel.port, channel.timeout) == ("mail.example.org", 587, 7)
    assert channel._password == PASSWORD
