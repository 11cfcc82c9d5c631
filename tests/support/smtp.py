"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, optionally with TLS and AUTH.

    with smtp_server(tls="starttls", credentials={"mailer": "s3cret"}) as server:
        SmtpChannel(server.url("mailer", "s3cret"), 5, ssl_context=server.client_ssl_context())
        ...
        [message] = server.wait_for(1)

TLS uses a throwaway CA made with ``cryptography`` (once per process); clients trust it
through :meth:`SmtpTestServer.client_ssl_context`, which still checks certificates and
host names, exactly like production.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
import logging
import socket
import ssl
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# aiosmtpd logs a warning when AUTH is allowed without its notion of TLS (see
# smtp_server() for why that is intended) and a deprecation notice of its own on every
# AUTH. Errors from handlers are still logged.
logging.getLogger("mail.log").setLevel(logging.ERROR)

TlsMode = Literal["none", "starttls", "implicit"]
FailStage = Literal["mail", "rcpt", "data"]


# --- certificates ---------------------------------------------------------------------


@dataclass(frozen=True)
class TlsMaterial:
    """A private CA and a server certificate for localhost / 127.0.0.1 / ::1."""

    ca_pem: bytes
    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_path, self.key_path)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Trusts only the test CA; verification and host-name checks stay on."""
        context = ssl.create_default_context(cadata=self.ca_pem.decode("ascii"))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


def make_tls_material(directory: Path, hostnames: Iterable[str] = ("localhost",)) -> TlsMaterial:
    now = dt.datetime.now(dt.UTC)
    validity = (now - dt.timedelta(minutes=5), now + dt.timedelta(days=2))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "telemed test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    names += [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / "server.pem"
    key_path = directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return TlsMaterial(ca_cert.public_bytes(serialization.Encoding.PEM), cert_path, key_path)


@lru_cache(maxsize=1)
def tls_material() -> TlsMaterial:
    """One CA per test process (key generation is cheap with EC, but not free)."""
    return make_tls_material(Path(tempfile.mkdtemp(prefix="telemed-smtp-tls-")))


# --- the server -------------------------------------------------------------------------


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage
    authenticated_as: str | None
    tls_version: str | None  # e.g. "TLSv1.3"; None for a plain connection
    received_at: float = field(default_factory=time.monotonic)  # when it was accepted (monotonic)


@dataclass
class AuthAttempt:
    mechanism: str
    login: str
    success: bool


@dataclass
class _Failures:
    remaining: int = 0
    code: int = 451
    stage: FailStage = "data"


class _Handler:
    """aiosmtpd handler; runs on the controller's event-loop thread."""

    def __init__(self, server: SmtpTestServer) -> None:
        self.server = server

    async def handle_MAIL(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if (reply := self.server._take_failure("mail")) is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        code = self.server.rejected_recipients.get(address.lower())
        if code is not None:
            return f"{code} 5.1.1 <{address}>: Recipient address rejected"
        if (reply := self.server._take_failure("rcpt")) is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        if (reply := self.server._take_failure("data")) is not None:
            return reply
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        hold = self.server._take_hold(parsed)  # type: ignore[arg-type]
        if hold is not None:  # answer (and record) only once the test lets go
            hold.arrived.set()
            while not hold.released.is_set():
                await asyncio.sleep(0.01)  # other sessions go on meanwhile
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        ssl_object = smtp.transport.get_extra_info("ssl_object") if smtp.transport else None
        self.server._record(
            ReceivedMail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                raw=raw,
                message=parsed,  # type: ignore[arg-type]  # policy.default gives EmailMessage
                authenticated_as=login,
                tls_version=ssl_object.version() if ssl_object is not None else None,
            )
        )
        return "250 Message accepted for delivery"


@dataclass
class Hold:
    """A message whose DATA the server holds unanswered: the sender is mid-send."""

    matches: Callable[[EmailMessage], bool]
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


@dataclass
class SmtpTestServer:
    host: str
    port: int
    tls: TlsMode
    credentials: Mapping[str, str] | None
    tls_material: TlsMaterial | None
    received: list[ReceivedMail] = field(default_factory=list)
    auth_attempts: list[AuthAttempt] = field(default_factory=list)
    rejected_recipients: dict[str, int] = field(default_factory=dict)
    _failures: _Failures = field(default_factory=_Failures)
    _holds: list[Hold] = field(default_factory=list)
    _lock: threading.Condition = field(default_factory=threading.Condition)

    # -- for tests ---------------------------------------------------------------------

    def url(self, username: str | None = None, password: str | None = None) -> str:
        """The SmtpChannel URL for this server, credentials percent-encoded."""
        scheme = {"none": "smtp", "starttls": "smtp+starttls", "implicit": "smtps"}[self.tls]
        auth = ""
        if username is not None:
            auth = quote(username, safe="")
            if password is not None:
                auth += ":" + quote(password, safe="")
            auth += "@"
        return f"{scheme}://{auth}{self.host}:{self.port}"

    def client_ssl_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts this server's test CA."""
        return tls_material().client_context()

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return [mail.message for mail in self.received]

    def first_arrival(self, recipient_part: str) -> float | None:
        """When (monotonic) the first mail to a recipient containing ``recipient_part`` arrived."""
        with self._lock:
            return next((mail.received_at for mail in self.received
                         if any(recipient_part in rcpt for rcpt in mail.rcpt_tos)), None)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[EmailMessage]:
        """Block until at least ``count`` messages arrived; fail the test otherwise."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {count} message(s) within {timeout} s, got {len(self.received)}"
                    )
                self._lock.wait(left)
            return [mail.message for mail in self.received]

    def fail_next(self, times: int, code: int = 451, stage: FailStage = "data") -> None:
        """Answer the next ``times`` MAIL/RCPT/DATA commands (per ``stage``) with ``code``."""
        with self._lock:
            self._failures = _Failures(times, code, stage)

    def hold_next(self, matches: Callable[[EmailMessage], bool]) -> Hold:
        """Hold the next message ``matches`` accepts at DATA, unanswered and unrecorded, until
        ``release()``: its sender is stuck mid-send while everything else flows."""
        hold = Hold(matches)
        with self._lock:
            self._holds.append(hold)
        return hold

    def reject_recipient(self, address: str, code: int = 550) -> None:
        with self._lock:
            self.rejected_recipients[address.lower()] = code

    def clear(self) -> None:
        with self._lock:
            self.received.clear()
            self.auth_attempts.clear()

    # -- called from the server thread -------------------------------------------------

    def _take_failure(self, stage: FailStage) -> str | None:
        with self._lock:
            failures = self._failures
            if failures.remaining <= 0 or failures.stage != stage:
                return None
            failures.remaining -= 1
            enhanced = "4.3.0" if 400 <= failures.code < 500 else "5.3.0"
            return f"{failures.code} {enhanced} Simulated failure, try again later"

    def _take_hold(self, message: EmailMessage) -> Hold | None:
        with self._lock:
            for hold in self._holds:
                if hold.matches(message):
                    self._holds.remove(hold)
                    return hold
        return None

    def _record(self, mail: ReceivedMail) -> None:
        with self._lock:
            self.received.append(mail)
            self._lock.notify_all()

    def _authenticate(
        self, smtp: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        ok = self.credentials is not None and self.credentials.get(login) == password
        with self._lock:
            self.auth_attempts.append(AuthAttempt(mechanism, login, ok))
        # handled=False without a message makes aiosmtpd answer "535 5.7.8".
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def smtp_server(
    *,
    tls: TlsMode = "none",
    credentials: Mapping[str, str] | None = None,
    auth_mechanisms: Iterable[str] = ("LOGIN", "PLAIN"),
    auth_required: bool | None = None,
    fail_times: int = 0,
    fail_code: int = 451,
    fail_stage: FailStage = "data",
    reject_recipients: Mapping[str, int] | None = None,
    host: str = "127.0.0.1",
) -> Iterator[SmtpTestServer]:
    """Run an SMTP server for the duration of the ``with`` block.

    ``tls``: ``"none"`` (plain), ``"starttls"`` (STARTTLS offered and required before
    anything else), ``"implicit"`` (TLS from the first byte, like port 465).
    ``credentials``: ``{login: password}``; enables AUTH with ``auth_mechanisms`` and,
    unless ``auth_required=False``, refuses mail from unauthenticated clients.
    ``fail_times``/``fail_code``/``fail_stage``: answer the first N MAIL, RCPT or DATA
    commands with that code (e.g. 451, then recover). ``reject_recipients``:
    ``{address: code}`` answered at RCPT.
    """
    material = tls_material() if tls != "none" else None
    server = SmtpTestServer(
        host=host,
        port=free_port(host),
        tls=tls,
        credentials=credentials,
        tls_material=material,
        rejected_recipients={k.lower(): v for k, v in (reject_recipients or {}).items()},
    )
    server.fail_next(fail_times, fail_code, fail_stage)

    smtp_kwargs: dict[str, Any] = {"data_size_limit": 10 * 1024 * 1024}
    if credentials is not None:
        excluded = {"LOGIN", "PLAIN"} - {m.upper() for m in auth_mechanisms}
        smtp_kwargs.update(
            authenticator=server._authenticate,
            auth_required=True if auth_required is None else auth_required,
            auth_exclude_mechanism=excluded,
            # aiosmtpd only counts STARTTLS as "TLS" for AUTH; an implicit-TLS server is
            # encrypted from the first byte, and a plain one is loopback-only by design.
            auth_require_tls=tls == "starttls",
        )
    ssl_context = None
    if tls == "starttls":
        assert material is not None
        smtp_kwargs.update(tls_context=material.server_context(), require_starttls=True)
    elif tls == "implicit":
        assert material is not None
        ssl_context = material.server_context()

    # The same as a UserWarning, from the server thread. Added to the filters in force now
    # (pytest's per-test set), not at import, so that it is in force when it fires.
    warnings.filterwarnings(
        "ignore", message="Requiring AUTH while not requiring TLS", category=UserWarning
    )
    controller = Controller(
        _Handler(server),
        hostname=host,
        port=server.port,
        ssl_context=ssl_context,
        server_hostname="localhost",  # the greeting name; skips a DNS lookup
        **smtp_kwargs,
    )
    controller.start()
    # The controller's own readiness probe is a session too; start from a clean slate.
    server.clear()
    try:
        yield server
    finally:
        controller.stop()


@contextmanager
def silent_server(host: str = "127.0.0.1") -> Iterator[tuple[str, int]]:
    """A port that accepts TCP connections but never says a word (for timeout tests)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        sock.listen(8)
        yield host, int(sock.getsockname()[1])


def unused_port(host: str = "127.0.0.1") -> tuple[str, int]:
    """A port with nothing listening (for 'server down' tests)."""
    return host, free_port(host)
