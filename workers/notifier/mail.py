"""Mail channels: SMTP (plain to loopback, implicit TLS, STARTTLS) and a .eml directory.

Delivery failures are split into transient (retry later) and permanent (retrying the same
message cannot help; alert instead); see :mod:`workers.notifier.errors`.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from email.message import Message
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from telemed.foundation import tls
from telemed.foundation.urls import is_loopback_host
from telemed.workers.notifier.eml import EmlDirectoryChannel
from telemed.workers.notifier.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError

__all__ = [
    "DeliveryError",
    "EmlDirectoryChannel",
    "MailChannel",
    "PermanentDeliveryError",
    "SmtpChannel",
    "TransientDeliveryError",
    "build_mail_channel",
    "secure_tls_context",
]

if TYPE_CHECKING:
    from telemed.foundation.settings import Settings

DEFAULT_PORTS = {"smtp": 25, "smtps": 465, "smtp+starttls": 587}
_ENHANCED_STATUS = re.compile(rb"^\s*([245]\.\d{1,3}\.\d{1,3})\b")
# TLS failures that are a configuration problem, not a blip: retrying will not help.
_PERMANENT_SSL_REASONS = {
    "UNSUPPORTED_PROTOCOL",
    "TLSV1_ALERT_PROTOCOL_VERSION",
    "WRONG_VERSION_NUMBER",
    "NO_PROTOCOLS_AVAILABLE",
}


@runtime_checkable
class MailChannel(Protocol):
    def send(self, message: Message) -> None:
        """Deliver one message or raise :class:`DeliveryError`."""
        ...


def secure_tls_context() -> ssl.SSLContext:
    """System trust store, hostname checks, TLS 1.2 or newer."""
    return tls.secure_context()


class SmtpChannel:
    """One connection per message: simple, and nothing half-open survives a failure.

    ``ssl_context`` lets tests trust their own CA; it must still verify certificates.
    """

    def __init__(
        self,
        url: str,
        timeout: float,
        *,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        # Never echo the URL in errors: it may hold the password.
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS:
            raise ValueError("SMTP URL must start with smtp://, smtps:// or smtp+starttls://")
        if not parts.hostname:
            raise ValueError("SMTP URL has no host")
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise ValueError("SMTP URL has an invalid port") from None
        if parts.scheme == "smtp" and not is_loopback_host(parts.hostname):
            raise ValueError(
                "plain smtp:// is only allowed to loopback; use smtps:// or smtp+starttls://"
            )
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("SMTP URL must not have a path, query or fragment")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        context = ssl_context or secure_tls_context()
        if (
            context.verify_mode != ssl.CERT_REQUIRED
            or not context.check_hostname
            or context.minimum_version < ssl.TLSVersion.TLSv1_2
        ):
            raise ValueError("ssl_context must verify certificates and require TLS 1.2 or newer")

        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = port
        self.timeout = timeout
        self.local_hostname = local_hostname
        self._context = context
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else ""

    def __repr__(self) -> str:
        auth = " auth" if self._username else ""
        return f"<SmtpChannel {self.scheme}://{self.host}:{self.port}{auth}>"

    def send(self, message: Message) -> None:
        self._talk(message)

    def check_login(self) -> None:
        """Connect, greet, TLS and log in as a send would, then quit: ``telemed check``.
        Raises the same DeliveryError a send would, naming the stage that failed."""
        self._talk(None)

    def _talk(self, message: Message | None) -> None:
        progress = ["connect"]  # the stage we reached, for the error text
        try:
            self._deliver(message, progress)
        except DeliveryError:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            raise _classify_refusals(exc.recipients) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentDeliveryError(
                f"SMTP authentication failed ({exc.smtp_code})", smtp_code=exc.smtp_code
            ) from None
        except smtplib.SMTPResponseException as exc:  # greeting, HELO, MAIL, DATA, ...
            raise _by_code(progress[-1], exc.smtp_code, exc.smtp_error) from None
        except smtplib.SMTPNotSupportedError:
            raise PermanentDeliveryError(
                f"SMTP server lacks a required extension ({progress[-1]})"
            ) from None
        except smtplib.SMTPServerDisconnected as exc:
            # smtplib reports a read timeout as "disconnected"; say what really happened.
            what = (
                "timeout" if isinstance(exc.__context__, TimeoutError) else "closed the connection"
            )
            raise TransientDeliveryError(f"SMTP server {what} ({progress[-1]})") from None
        except ssl.SSLCertVerificationError:
            raise PermanentDeliveryError(
                f"SMTP server certificate not trusted ({self.host})"
            ) from None
        except ssl.SSLError as exc:
            permanent = exc.reason in _PERMANENT_SSL_REASONS
            kind = PermanentDeliveryError if permanent else TransientDeliveryError
            raise kind(f"TLS failure with SMTP server ({progress[-1]}: {exc.reason})") from None
        # smtplib.SMTPException subclasses OSError, so it must come before OSError.
        except smtplib.SMTPException as exc:
            raise TransientDeliveryError(
                f"SMTP error ({progress[-1]}: {type(exc).__name__})"
            ) from None
        except TimeoutError:
            raise TransientDeliveryError(f"SMTP timeout ({progress[-1]})") from None
        except OSError as exc:  # refused, reset, unreachable, DNS
            raise TransientDeliveryError(
                f"SMTP connection failed ({progress[-1]}: {type(exc).__name__})"
            ) from None

    def _deliver(self, message: Message | None, progress: list[str]) -> None:
        client = self._connect()
        delivered = False
        try:
            progress.append("ehlo")
            client.ehlo()
            if self.scheme == "smtp+starttls":
                if not client.has_extn("starttls"):
                    # Required, never opportunistic: sending in clear is not an option.
                    raise PermanentDeliveryError("SMTP server does not offer STARTTLS")
                progress.append("starttls")
                client.starttls(context=self._context)
                progress.append("ehlo")
                client.ehlo()
            if self._username is not None:
                progress.append("auth")
                client.login(self._username, self._password)
            if message is None:  # only checking that we can log in
                delivered = True
                return
            progress.append("send")
            refused = client.send_message(message)
            if refused:  # some recipients accepted, some not
                raise _classify_refusals(refused)
            delivered = True
        finally:
            _close(client, polite=delivered)

    def _connect(self) -> smtplib.SMTP:
        if self.scheme == "smtps":
            return smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self.local_hostname,
                timeout=self.timeout,
                context=self._context,
            )
        return smtplib.SMTP(
            self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout
        )


def _close(client: smtplib.SMTP, *, polite: bool) -> None:
    """QUIT after success (errors ignored: the message is already accepted); after a
    failure just drop the socket, so a dead server cannot cost a second timeout."""
    if polite:
        try:
            client.quit()
            return
        except (smtplib.SMTPException, OSError):
            pass
    client.close()


def _by_code(stage: str, code: int, reply: bytes | str | None = None) -> DeliveryError:
    enhanced = ""
    if isinstance(reply, str):
        reply = reply.encode("utf-8", "replace")
    if reply and (match := _ENHANCED_STATUS.match(reply)):
        enhanced = " " + match.group(1).decode()
    text = f"SMTP server refused ({stage}): {code}{enhanced}"
    if 500 <= code < 600:
        return PermanentDeliveryError(text, smtp_code=code)
    return TransientDeliveryError(text, smtp_code=code)


def _classify_refusals(refused: dict[str, tuple[int, bytes]]) -> DeliveryError:
    """Permanent only if every refusal is permanent; any 4xx means 'try again'."""
    codes = [code for code, _reply in refused.values()]
    transient = [code for code in codes if not 500 <= code < 600]
    code = transient[0] if transient else codes[0]
    reply = next(r for c, r in refused.values() if c == code)
    return _by_code("recipient", code, reply)


def build_mail_channel(settings: Settings) -> MailChannel:
    """SMTP when ``TELEMED_SMTP_URL`` is set, else .eml files in the mail directory."""
    if settings.smtp_url is not None:
        return SmtpChannel(
            settings.smtp_url.get_secret_value(), timeout=settings.smtp_timeout_seconds
        )
    return EmlDirectoryChannel(settings.resolved_mail_dir)
