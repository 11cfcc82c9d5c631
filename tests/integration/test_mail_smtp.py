"""SmtpChannel against a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from telemed.settings import load_settings
from telemed.workers.notifier import calendar
from telemed.workers.notifier.mail import (
    DeliveryError,
    PermanentDeliveryError,
    SmtpChannel,
    TransientDeliveryError,
    build_mail_channel,
)
from telemed.workers.notifier.render import render_doctor, render_patient
from tests.support.invitations import invitation
from tests.support.mail_scan import bare_line_feeds, calendar_parts
from tests.support.notices import JOIN, START, doctor, patient
from tests.support.smtp import silent_server, smtp_server, unused_port

pytestmark = pytest.mark.integration

FROM = "telemed <no-reply@telemed.example>"
USER = "mailer@clinic.example"
PASSWORD = "c0rrect horse:battery/staple%"


def mail(to: str = "grace@example.org") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "no-reply@telemed.example"
    message["To"] = to
    message["Subject"] = "test"
    message.set_content("body text that must never appear in an error")
    return message


def assert_clean(error: DeliveryError) -> None:
    """Errors are logged and stored: no credentials, addresses or bodies in them."""
    text = str(error) + repr(error)
    for secret in (PASSWORD, "c0rrect", USER, "grace@example.org", "body text"):
        assert secret not in text


def test_plain_delivery_of_a_rendered_patient_invite() -> None:
    with smtp_server() as server:
        SmtpChannel(server.url(), 5).send(render_patient(patient(), FROM))
        [received] = server.wait_for(1)
        [envelope] = server.received
    assert envelope.rcpt_tos == ["grace@example.org"]
    assert envelope.mail_from == "no-reply@telemed.example"
    assert envelope.tls_version is None
    assert received["Subject"].startswith("Your video appointment with Dr. Ada Lovelace")
    text = received.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = received.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert JOIN in text and JOIN in html
    assert "zak=" not in envelope.raw.decode().lower() and "/s/" not in text + html


def test_doctor_gets_the_start_link_over_starttls_with_auth() -> None:
    with smtp_server(tls="starttls", credentials={USER: PASSWORD}) as server:
        channel = SmtpChannel(
            server.url(USER, PASSWORD), 5, ssl_context=server.client_ssl_context()
        )
        channel.send(render_doctor(doctor(), FROM))
        [received] = server.wait_for(1)
        [envelope] = server.received
    assert envelope.tls_version in {"TLSv1.2", "TLSv1.3"}
    assert envelope.authenticated_as == USER
    assert envelope.rcpt_tos == ["ada@clinic.example"]
    assert START in received.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_starttls_is_required_not_opportunistic() -> None:
    with smtp_server(tls="none") as server:  # offers no STARTTLS
        url = server.url().replace("smtp://", "smtp+starttls://")
        with pytest.raises(PermanentDeliveryError, match="STARTTLS"):
            SmtpChannel(url, 5).send(mail())
        assert server.received == []


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_untrusted_certificate_is_refused(tls: str) -> None:
    with smtp_server(tls=tls) as server:  # type: ignore[arg-type]
        # Default context: system trust store only, which does not know the test CA.
        with pytest.raises(PermanentDeliveryError, match="certificate") as caught:
            SmtpChannel(server.url(USER, PASSWORD), 5).send(mail())
        assert server.received == [] and server.auth_attempts == []
    assert_clean(caught.value)


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
def test_implicit_tls_with_each_auth_mechanism(mechanism: str) -> None:
    with smtp_server(
        tls="implicit", credentials={USER: PASSWORD}, auth_mechanisms=[mechanism]
    ) as server:
        assert server.url().startswith("smtps://")
        SmtpChannel(server.url(USER, PASSWORD), 5, ssl_context=server.client_ssl_context()).send(
            mail()
        )
        server.wait_for(1)
        assert [(a.mechanism, a.login, a.success) for a in server.auth_attempts] == [
            (mechanism, USER, True)
        ]
        assert server.received[0].authenticated_as == USER
        assert server.received[0].tls_version in {"TLSv1.2", "TLSv1.3"}


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_wrong_password_is_permanent(tls: str) -> None:
    with smtp_server(tls=tls, credentials={USER: "something else"}) as server:  # type: ignore[arg-type]
        channel = SmtpChannel(
            server.url(USER, PASSWORD), 5, ssl_context=server.client_ssl_context()
        )
        with pytest.raises(PermanentDeliveryError, match="authentication") as caught:
            channel.send(mail())
        assert server.received == []
        assert server.auth_attempts and not any(a.success for a in server.auth_attempts)
    assert caught.value.smtp_code == 535
    assert_clean(caught.value)


def test_unauthenticated_client_is_refused_permanently() -> None:
    with smtp_server(tls="starttls", credentials={USER: PASSWORD}) as server:
        with pytest.raises(PermanentDeliveryError) as caught:
            SmtpChannel(server.url(), 5, ssl_context=server.client_ssl_context()).send(mail())
        assert server.received == []
    assert caught.value.smtp_code == 530


def test_451_is_transient_and_the_retry_succeeds() -> None:
    with smtp_server(fail_times=1, fail_code=451) as server:
        channel = SmtpChannel(server.url(), 5)
        with pytest.raises(TransientDeliveryError) as caught:
            channel.send(mail())
        assert caught.value.smtp_code == 451
        assert server.received == []
        channel.send(mail())  # the server has recovered
        assert len(server.wait_for(1)) == 1
    assert_clean(caught.value)


@pytest.mark.parametrize("stage", ["mail", "rcpt", "data"])
def test_4xx_at_every_stage_is_transient(stage: str) -> None:
    with smtp_server(fail_times=1, fail_code=421, fail_stage=stage) as server:  # type: ignore[arg-type]
        with pytest.raises(TransientDeliveryError):
            SmtpChannel(server.url(), 5).send(mail())


def test_554_at_data_is_permanent() -> None:
    with smtp_server(fail_times=1, fail_code=554, fail_stage="data") as server:
        with pytest.raises(PermanentDeliveryError) as caught:
            SmtpChannel(server.url(), 5).send(mail())
    assert caught.value.smtp_code == 554


def test_bad_recipient_550_is_permanent() -> None:
    with smtp_server(reject_recipients={"grace@example.org": 550}) as server:
        with pytest.raises(PermanentDeliveryError) as caught:
            SmtpChannel(server.url(), 5).send(mail())
        assert server.received == []
    assert caught.value.smtp_code == 550
    assert "5.1.1" in str(caught.value)
    assert_clean(caught.value)


def test_server_down_is_transient() -> None:
    host, port = unused_port()
    with pytest.raises(TransientDeliveryError, match="connect"):
        SmtpChannel(f"smtp://{host}:{port}", 2).send(mail())


def test_silent_server_times_out_transiently() -> None:
    with silent_server() as (host, port):
        started = time.monotonic()
        with pytest.raises(TransientDeliveryError, match="timeout"):
            SmtpChannel(f"smtp://{host}:{port}", 0.5).send(mail())
        assert time.monotonic() - started < 3  # one timeout, not one per step


def test_build_mail_channel_from_settings_talks_to_the_server(tmp_path: Path) -> None:
    with smtp_server() as server:
        channel = build_mail_channel(load_settings(data_dir=tmp_path, smtp_url=server.url()))
        channel.send(mail())
        assert len(server.wait_for(1)) == 1


def test_one_channel_sends_many_messages() -> None:
    with smtp_server(tls="starttls", credentials={USER: PASSWORD}) as server:
        channel = SmtpChannel(
            server.url(USER, PASSWORD), 5, ssl_context=server.client_ssl_context()
        )
        for n in range(5):
            channel.send(mail(f"p{n}@example.org"))
        assert sorted(m["To"] for m in server.wait_for(5)) == [
            f"p{n}@example.org" for n in range(5)
        ]


def test_the_calendar_parts_arrive_with_crlf_line_ends() -> None:
    """RFC 5545 content lines end in CRLF: both the inline text/calendar part (it used to
    be re-joined with bare LF) and the .ics file, as the SMTP server received them."""
    message = render_patient(patient(), FROM)
    calendar.attach(message, calendar.build_ics(invitation()), calendar.Method.REQUEST)
    with smtp_server() as server:
        SmtpChannel(server.url(), 5).send(message)
        server.wait_for(1)
        [envelope] = server.received
    parts = calendar_parts(envelope.raw)
    assert len(parts) == 2 and all(p.startswith(b"BEGIN:VCALENDAR\r\n") for p in parts)
    assert [bare_line_feeds(p) for p in parts] == [0, 0]
    assert parts[0] == parts[1]
