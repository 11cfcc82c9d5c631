"""Notices in, ready-to-send mail out: a ``multipart/alternative`` of text and HTML.

A mail is a plain compat32 ``email.message.Message`` tree built part by part (see
:mod:`workers.notifier.mime`): the modern API reparsed every header on every assignment and
was most of a worker's CPU per mail. To read one with the modern API, parse its bytes.

Each role's template context is built from that role's notice type only, so a patient
template cannot reach a host link even by mistake: the value is not in its context, and
``StrictUndefined`` turns a reference to it into an error instead of an empty string.
As a last check, a rendered patient message that still contains a start-link marker is
refused rather than returned.
"""

from __future__ import annotations

import functools
import gettext as gettext_module
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import Message
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from telemed.workers.notifier import mime
from telemed.workers.notifier.errors import InvalidMessage
from telemed.workers.notifier.messages import (
    AdminAlert,
    DoctorNotice,
    PatientNotice,
    looks_like_host_link,
)
from telemed.workers.notifier.timefmt import format_span, format_start

TEMPLATE_PACKAGE = "telemed.workers.notifier"
TEMPLATE_DIR = "templates"


class RenderError(InvalidMessage):
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
        # Templates ship with the code: no stat() of every template file on each render.
        auto_reload=False,
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
        self, notice: PatientNotice, mail_from: str, *, message_id: str | None = None,
        reply_to: str | None = None,
    ) -> Message:
        context = patient_context(notice, self.translations.gettext)
        message = self._compose(
            f"patient/{notice.kind.value}",
            context,
            mail_from=mail_from,
            to=(notice.patient_name, notice.patient_email),
            message_id=message_id,
            reply_to=reply_to,
        )
        # Defence in depth: the type cannot hold a host link, and neither may the output,
        # read back as a client decodes it. (A calendar added later is checked by
        # ``calendar.attach``, which refuses a host link for every recipient.)
        for text in mime.leaf_texts(message):
            if looks_like_host_link(text):
                raise RenderError("patient message would contain a host link")
        return message

    def doctor(
        self, notice: DoctorNotice, mail_from: str, *, message_id: str | None = None,
        reply_to: str | None = None,
    ) -> Message:
        return self._compose(
            f"doctor/{notice.kind.value}",
            doctor_context(notice, self.translations.gettext),
            mail_from=mail_from,
            to=(notice.doctor_name, notice.doctor_email),
            message_id=message_id,
            reply_to=reply_to,
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
    ) -> Message:
        """One mail to every admin of the alert (all in ``To``: one SMTP transaction)."""
        return self._compose(
            "admin/alert",
            {"alert_subject": alert.subject, "alert_body": alert.body},
            mail_from=mail_from,
            to=("", alert.admin_email),
            also_to=alert.also_to,
            message_id=message_id,
        )

    def _compose(
        self,
        base: str,
        context: Mapping[str, Any],
        *,
        mail_from: str,
        to: tuple[str, str],
        message_id: str | None,
        reply_to: str | None = None,
        also_to: tuple[str, ...] = (),
    ) -> Message:
        # The text template also defines the subject ({% set subject = ... %}), so the
        # wording of a message lives in one place.
        text_module = self.env.get_template(f"{base}.txt.j2").make_module(dict(context))
        subject = vars(text_module).get("subject")
        if not isinstance(subject, str):
            raise RenderError(f"{base}.txt.j2 does not set a subject")
        subject = " ".join(subject.split())
        text = str(text_module)
        html = self.env.get_template(f"{base}.html.j2").render(context)

        sender_name, sender_address = _sender(mail_from)
        try:
            recipients = ", ".join([mime.address("To", *to), *(mime.address("To", "", a) for a in also_to)])
            headers = [
                ("Subject", mime.unstructured("Subject", subject)),
                ("From", mime.address("From", sender_name, sender_address)),
                ("To", recipients),
                ("Date", format_datetime(datetime.now(UTC))),
                (
                    "Message-ID",
                    _checked_message_id(message_id)
                    or make_msgid(domain=sender_address.rpartition("@")[2]),
                ),
                *([("Reply-To", mime.address("Reply-To", *_sender(reply_to, "reply_to")))] if reply_to else []),
                # RFC 3834: tells vacation responders not to answer.
                ("Auto-Submitted", "auto-generated"),
                ("MIME-Version", "1.0"),
                ("Content-Type", mime.multipart_type("alternative")),
            ]
        except mime.HeaderValueError as exc:
            raise RenderError(str(exc)) from None
        # quoted-printable keeps long links intact through 998-octet line limits. The part
        # headers are those email.policy.default wrote (MIME-Version on the part it made
        # itself), so the bytes are what they were.
        message = mime.multipart(
            headers,
            [
                mime.leaf(
                    [
                        ("Content-Type", 'text/plain; charset="utf-8"'),
                        ("Content-Transfer-Encoding", "quoted-printable"),
                    ],
                    mime.quoted_printable(text),
                ),
                mime.leaf(
                    [
                        ("Content-Type", 'text/html; charset="utf-8"'),
                        ("Content-Transfer-Encoding", "quoted-printable"),
                        ("MIME-Version", "1.0"),
                    ],
                    mime.quoted_printable(html),
                ),
            ],
        )
        _check_headers(message)
        return message


@functools.lru_cache(maxsize=256)
def _sender(mail_from: str, what: str = "mail_from") -> tuple[str, str]:
    """(display name, address) of a configured sender (or reply-to); the name as a client
    shows it. Cached: a clinic's sender is parsed once rather than for every mail."""
    try:
        mime.one_line(what, mail_from)
    except mime.HeaderValueError:
        raise RenderError(f"{what}: must be one line") from None
    name, address = parseaddr(mail_from)
    local, _, domain = address.rpartition("@")
    if not local or not domain:
        raise RenderError(f"{what}: not an e-mail address")
    return mime.decoded(name), address


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


def _check_headers(message: Message) -> None:
    """Headers are logged and shown in inbox lists: links never belong there, neither in
    a value as written nor as a client decodes it (an RFC 2047 word could hide one)."""
    for name, value in message.items():
        for text in (value, mime.decoded(value)):
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
) -> Message:
    return default_renderer().patient(notice, mail_from, message_id=message_id)


def render_doctor(
    notice: DoctorNotice, mail_from: str, *, message_id: str | None = None
) -> Message:
    return default_renderer().doctor(notice, mail_from, message_id=message_id)


def render_admin(
    alert: AdminAlert, mail_from: str, *, message_id: str | None = None
) -> Message:
    return default_renderer().admin(alert, mail_from, message_id=message_id)
