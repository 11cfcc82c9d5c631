"""What a clinic's profile means for the pipeline, as plain functions.

A clinic's profile (``foundation.tenancy.ClinicProfile``, from the ``ClinicDirectory`` on
the worker context) leaves some things to the deployment: a clinic without its own
sender mails from TELEMED_MAIL_FROM's address under its own name, one without reminder
offsets uses TELEMED_REMINDER_OFFSETS. Nothing else falls back: a clinic without a
webhook URL is sent no webhook, one without admins gets no alert mail (an alert about
clinic B never reaches the deployment's or another clinic's admins), one without a Zoom
app has no Zoom account (never the deployment's: B's meetings would land in A's account;
which of its apps can be used is ``zoom.apps``).
The default clinic's profile is built from the environment (``telemed.settings.default_profile``),
so a single-clinic deployment behaves as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.utils import formataddr, parseaddr

from telemed.foundation.settings import Settings
from telemed.foundation.tenancy import DEFAULT_CLINIC, ClinicProfile


@dataclass(frozen=True)
class Sender:
    """Who a clinic's mail comes from: ``From`` (``Name <address>``) and ``Reply-To``."""

    mail_from: str
    reply_to: str | None = None


@dataclass(frozen=True, repr=False)
class WebhookTarget:
    url: str
    secret: str | None = field(repr=False)  # None: configured without a secret (not sent)

    def __repr__(self) -> str:
        return "WebhookTarget(<url>)"


def sender(profile: ClinicProfile, settings: Settings) -> Sender:
    """The clinic's sender: its address (or the deployment's) under its display name, or
    the name its own address carries, or (a clinic other than the default) its name, or
    the name TELEMED_MAIL_FROM carries."""
    own_name, own_address = parseaddr(profile.mail_from or "")
    deployment_name, deployment_address = parseaddr(settings.mail_from)
    address = own_address or deployment_address
    clinic_name = profile.name if profile.clinic_id != DEFAULT_CLINIC else ""
    display = profile.mail_display_name or own_name or clinic_name or deployment_name
    return Sender(formataddr((display, address)) if display else address, profile.mail_reply_to or None)


def reminder_offsets(profile: ClinicProfile, settings: Settings) -> str:
    return profile.reminder_offsets if profile.reminder_offsets is not None else settings.reminder_offsets


def webhook_target(profile: ClinicProfile) -> WebhookTarget | None:
    """Where the clinic's status callbacks go; None: it has no webhook (none is owed)."""
    if not profile.webhook_url:
        return None
    return WebhookTarget(profile.webhook_url, profile.webhook_secret or None)


def admin_recipients(profile: ClinicProfile) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a.strip() for a in profile.admin_emails if a and a.strip()))
