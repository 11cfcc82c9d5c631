"""Notices in, ready-to-send ``EmailMessage`` objects out (text and HTML alternatives).

Each role's template context is built from that role's notice type only, so a patient
template cannot reach a host link even by mistake: the value is not in its context, and
``StrictUndefined`` turns a reference to it into an error instead of an empty string.
As a last check, a rendered patient message that still contains a start-link marker is
refused rather than returned.
"""

from __future__ import annotations

import gettext as gettext_module
from collections.abc import Mapping
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from workers.notifier.messages import (
    AdminAlert,
    DoctorNotice,
    PatientNotice,
    looks_like_host_link,
)
from workers.notifier.timefmt import format_span, format_start

TEMPLATE_PACKAGE = "workers.notifier"
TEMPLATE_DIR = "templates"


class RenderError(ValueError):
    """A message could not be built safely; the text never includes links or bodies."""


def build_environment(translations: gettext_module.NullTranslations | None = None) -> Environment:
    """The Jinja environment; ``translations`` defaults to the identity (English)."""
    env = Environment(
        loader=PackageLoader(TEMPLATE_PACKAGE, TEMPLATE_DIR),
        # Only the HTML templates are escaped; the text part must keep "&" and "<" as-is.
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    # Whitespace inside {% trans %} blocks is collapsed, so msgids stay one line.
    env.policies["ext.i18n.trimmed"] = True
    # newstyle: _("... %(name)s", name=value) formats and, in HTML, escapes the values.
    env.install_gettext_translations(  # type: ignore[attr-defined]
        translations or gettext_module.NullTranslations(), newstyle=True
    )
    return env


def patient_context(notice: PatientNotice, gettext: Any) -> dict[str, Any]:
    """Everything a patient template may use. Keep in step with the template test."""
    time = notice.time
    return {
        "kind": notice.kind.value,
        "patient_name": notice.patient_name,
        "doctor_name": notice.doctor_name,
        "clinic_name": notice.clinic_name,
        "when": format_span(time, gettext) if time else None,
        "when_short": format_start(time, gettext) if time else None,
        "join_url": notice.join_url,
        "passcode": notice.passcode,
    }


def doctor_context(notice: DoctorNotice, gettext: Any) -> dict[str, Any]:
    time = notice.time
    return {
        "kind": notice.kind.value,
        "doctor_name": notice.doctor_name,
        "patient_name": notice.patient_name,
        "clinic_name": notice.clinic_name,
        "when": format_span(time, gettext) if time else None,
        "when_short": format_start(time, gettext) if time else None,
        "start_url": notice.start_url,
        "start_url_signed": notice.start_url_signed,
        "join_url": notice.join_url,
    }


def calendar_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """What a calendar entry may say: never a start link, signed or not (calendars are
    shared with assistants and synced to phones, and entries outlive the link)."""
    return {k: v for k, v in context.items() if not k.startswith("start_url")}


class MailRenderer:
    """Renders notices with one set of translations (one per language, built once)."""

    def __init__(self, translations: gettext_module.NullTranslations | None = None) -> None:
        self.translations = translations or gettext_module.NullTranslations()
        self.env = build_environment(self.translations)

    def patient(
        self, notice: PatientNotice, mail_from: str, *, message_id: str | None = None
    ) -> EmailMessage:
        context = patient_context(notice, self.translations.gettext)
        message = self._compose(
            f"patient/{notice.kind.value}",
            context,
            mail_from=mail_from,
            to=Address(display_name=notice.patient_name, addr_spec=notice.patient_email),
            message_id=message_id,
        )
        # Defence in depth: the type cannot hold a host link, and neither may the output.
        for part in message.walk():
            if not part.is_multipart() and looks_like_host_link(part.get_content()):
                raise RenderError("patient message would contain a host link")
        return message

    def doctor(
        self, notice: DoctorNotice, mail_from: str, *, message_id: str | None = None
    ) -> EmailMessage:
        return self._compose(
            f"doctor/{notice.kind.value}",
            doctor_context(notice, self.translations.gettext),
            mail_from=mail_from,
            to=Address(display_name=notice.doctor_name, addr_spec=notice.doctor_email),
            message_id=message_id,
        )

    def calendar_text(self, role: str, context: Mapping[str, Any]) -> tuple[str, str]:
        """(summary, description) for a calendar entry, from ``{role}/calendar.txt.j2``."""
        module = self.env.get_template(f"{role}/calendar.txt.j2").make_module(calendar_context(context))
        summary = vars(module).get("summary")
        if not isinstance(summary, str):
            raise RenderError(f"{role}/calendar.txt.j2 does not set a summary")
        description = str(module).strip()
        if looks_like_host_link(summary) or looks_like_host_link(description):
            raise RenderError("a calendar entry would contain a host link")
        return " ".join(summary.split()), description

    def admin(
        self, alert: AdminAlert, mail_from: str, *, message_id: str | None = None
    ) -> EmailMessage:
        return self._compose(
            "admin/alert",
            {"alert_subject": alert.subject, "alert_body": alert.body},
            mail_from=mail_from,
            to=Address(addr_spec=alert.admin_email),
            message_id=message_id,
        )

    def _compose(
        self,
        base: str,
        context: Mapping[str, Any],
        *,
        mail_from: str,
        to: Address,
        message_id: str | None,
    ) -> EmailMessage:
        # The text template also defines the subject ({% set subject = ... %}), so the
        # wording of a message lives in one place.
        text_module = self.env.get_template(f"{base}.txt.j2").make_module(dict(context))
        subject = vars(text_module).get("subject")
        if not isinstance(subject, str):
            raise RenderError(f"{base}.txt.j2 does not set a subject")
        subject = " ".join(subject.split())
        text = str(text_module)
        html = self.env.get_template(f"{base}.html.j2").render(context)

        sender_domain = _sender_domain(mail_from)
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = mail_from
        message["To"] = to
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = _checked_message_id(message_id) or make_msgid(domain=sender_domain)
        # RFC 3834: tells vacation responders not to answer.
        message["Auto-Submitted"] = "auto-generated"
        # quoted-printable keeps long links intact through 998-octet line limits.
        message.set_content(text, subtype="plain", cte="quoted-printable")
        message.add_alternative(html, subtype="html", cte="quoted-printable")
        _check_headers(message)
        return message


def _sender_domain(mail_from: str) -> str:
    if any(ch in mail_from for ch in "\r\n"):
        raise RenderError("mail_from: must be one line")
    _name, address = parseaddr(mail_from)
    local, _, domain = address.rpartition("@")
    if not local or not domain:
        raise RenderError("mail_from: not an e-mail address")
    return domain


def _checked_message_id(message_id: str | None) -> str | None:
    if message_id is None:
        return None
    if (
        not (message_id.startswith("<") and message_id.endswith(">"))
        or "@" not in message_id
        or any(ch.isspace() for ch in message_id)
    ):
        raise RenderError("message_id: must look like <id@domain>")
    return message_id


def _check_headers(message: EmailMessage) -> None:
    """Headers are logged and shown in inbox lists: links never belong there."""
    for name, value in message.items():
        text = str(value)
        if "://" in text or looks_like_host_link(text):
            raise RenderError(f"header {name} would carry a link")


_default_renderer: MailRenderer | None = None


def default_renderer() -> MailRenderer:
    global _default_renderer
    if _default_renderer is None:
        _default_renderer = MailRenderer()
    return _default_renderer


def render_patient(
    notice: PatientNotice, mail_from: str, *, message_id: str | None = None
) -> EmailMessage:
    return default_renderer().patient(notice, mail_from, message_id=message_id)


def render_doctor(
    notice: DoctorNotice, mail_from: str, *, message_id: str | None = None
) -> EmailMessage:
    return default_renderer().doctor(notice, mail_from, message_id=message_id)


def render_admin(
    alert: AdminAlert, mail_from: str, *, message_id: str | None = None
) -> EmailMessage:
    return default_renderer().admin(alert, mail_from, message_id=message_id)
