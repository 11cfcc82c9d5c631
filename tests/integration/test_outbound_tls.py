"""Every outbound TLS connection insists on TLS 1.2+, whatever the libraries' defaults.

A real local HTTPS server, certified by a test CA the clients trust, speaks TLS 1.1 only
(or TLS 1.2, for the control). Our Zoom API client, Zoom OAuth token request, status
webhook and SMTP client must refuse the first and talk to the second. To show that the
minimum is ours, not urllib3's, the libraries' own default context is made as permissive
as older releases were (TLS 1.0+) for the TLS 1.1 case: without our settings the clients
would then connect.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3.connection

from telemed.foundation import tls
from telemed.workers.notifier.errors import PermanentDeliveryError
from telemed.workers.notifier.mail import SmtpChannel, secure_tls_context
from telemed.workers.notifier.webhook import WebhookChannel
from telemed.zoom.client import ZoomClient, environment_session
from telemed.zoom.errors import ZoomError
from telemed.zoom.oauth import request_token
from telemed.zoom.tokens import StaticTokenProvider
from tests.support.smtp import TlsMaterial, tls_material

pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")]

LEGACY_CIPHERS = "DEFAULT:@SECLEVEL=0"  # OpenSSL 3 refuses TLS < 1.2 at the default level


class _Handler(BaseHTTPRequestHandler):
    def _answer(self, body: dict[str, Any]) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # a Zoom meeting
        self._answer({"id": 81234567890, "topic": "t"})

    def do_POST(self) -> None:  # a token grant (the webhook ignores the body)
        self._answer({"access_token": "tok", "expires_in": 3600, "token_type": "bearer"})

    def log_message(self, *args: Any) -> None:
        pass


def _server_context(material: TlsMaterial, version: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(material.cert_path, material.key_path)
    context.minimum_version = ssl.TLSVersion.TLSv1 if version < ssl.TLSVersion.TLSv1_2 else version
    context.maximum_version = version
    context.set_ciphers(LEGACY_CIPHERS)
    return context


@contextmanager
def _tls_server(version: ssl.TLSVersion) -> Iterator[str]:
    material = tls_material()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.socket = _server_context(material, version).wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("ca") / "ca.pem"
    path.write_bytes(tls_material().ca_pem)
    return str(path)


def _permissive_context(*args: Any, **kwargs: Any) -> ssl.SSLContext:
    """What urllib3 would build if its defaults allowed TLS 1.0 / 1.1 (as 1.x did)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers(LEGACY_CIPHERS)
    return context


@pytest.fixture
def permissive_library_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(urllib3.connection, "create_urllib3_context", _permissive_context)


@pytest.fixture(scope="module")
def tls11_possible(ca_file: str) -> None:
    """This OpenSSL really speaks TLS 1.1 with a willing client (else the refusals prove nothing)."""
    with _tls_server(ssl.TLSVersion.TLSv1_1) as url:
        context = _permissive_context()
        context.load_verify_locations(ca_file)
        host, port = url.removeprefix("https://").split(":")
        try:
            with socket.create_connection((host, int(port)), timeout=5) as raw, \
                    context.wrap_socket(raw, server_hostname=host) as sock:
                assert sock.version() == "TLSv1.1"
        except (ssl.SSLError, OSError) as exc:
            pytest.skip(f"this OpenSSL cannot speak TLS 1.1 even at SECLEVEL=0 ({exc})")


def _zoom(url: str, ca_file: str) -> dict[str, Any]:
    session = environment_session(url)
    session.verify = ca_file
    return ZoomClient(url, StaticTokenProvider("tok"), timeout=5, session=session).get_meeting(81234567890)


def _oauth(url: str) -> str:
    # No session of ours: request_token builds its own (the CA comes from REQUESTS_CA_BUNDLE).
    return request_token(url, client_id="c", client_secret="s", form={"grant_type": "client_credentials"},
                         timeout=5).access_token


def _webhook(url: str, ca_file: str) -> int:
    session = requests.Session()
    session.verify = ca_file
    return WebhookChannel(f"{url}/hook", "secret", 5, session=session).send({"status": "scheduled"}, "d-1")


def _trusting_mail_context(ca_file: str) -> ssl.SSLContext:
    context = secure_tls_context()  # production's context, plus the test CA
    context.load_verify_locations(ca_file)
    return context


@pytest.mark.usefixtures("tls11_possible", "permissive_library_defaults")
def test_every_client_refuses_tls_1_1(ca_file: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_file)
    with _tls_server(ssl.TLSVersion.TLSv1_1) as url:
        with pytest.raises(ZoomError, match="TLS handshake failed"):
            _zoom(url, ca_file)
        with pytest.raises(ZoomError, match="TLS handshake failed"):
            _oauth(url)
        with pytest.raises(PermanentDeliveryError, match="TLS failure"):
            _webhook(url, ca_file)
        port = int(url.rsplit(":", 1)[1])
        smtp = SmtpChannel(f"smtps://127.0.0.1:{port}", 5, ssl_context=_trusting_mail_context(ca_file))
        with pytest.raises(PermanentDeliveryError):
            smtp.send(EmailMessage())


def test_every_client_talks_tls_1_2(ca_file: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_file)
    with _tls_server(ssl.TLSVersion.TLSv1_2) as url:
        assert _zoom(url, ca_file)["id"] == 81234567890
        assert _oauth(url) == "tok"
        assert _webhook(url, ca_file) == 200


def test_certificates_are_still_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with _tls_server(ssl.TLSVersion.TLSv1_2) as url:  # the test CA is not trusted here
        with pytest.raises(ZoomError, match="certificate"):
            ZoomClient(url, StaticTokenProvider("tok"), timeout=5).get_meeting(1)
        with pytest.raises(PermanentDeliveryError, match="TLS failure"):
            WebhookChannel(f"{url}/hook", "secret", 5).send({"status": "scheduled"}, "d-1")


def test_the_shared_context_is_tls_1_2_and_verifying() -> None:
    context = tls.secure_context()
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
