"""The options of ``telemed clinics add|update``: every setting of a clinic, and where its
secrets are read from.

Secrets are never command-line arguments (every user of the host sees those in ``ps``,
and the shell keeps them in its history): a secret option names where to read it,
``env:VARIABLE``, ``file:PATH`` or ``-`` for standard input (one option at most).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

SECRET_OPTIONS = {  # option → field
    "zoom_client_secret": "--zoom-client-secret", "zoom_oauth_client_secret": "--zoom-oauth-client-secret",
    "zoom_webhook_secret": "--zoom-webhook-secret", "webhook_secret": "--webhook-secret",
}
CLEARABLE = ("zoom-account", "zoom-oauth", "zoom-webhook-secret", "mail-from", "reply-to", "display-name",
             "reminder-offsets", "webhook", "admin-emails")
# What each --clear NAME clears: pairs that only mean something together go together.
CLEARS = {
    "zoom-account": ("zoom_account_id", "zoom_client_id", "zoom_client_secret"),
    "zoom-oauth": ("zoom_oauth_client_id", "zoom_oauth_client_secret"),
    "zoom-webhook-secret": ("zoom_webhook_secret",), "mail-from": ("mail_from",), "reply-to": ("mail_reply_to",),
    "display-name": ("mail_display_name",), "reminder-offsets": ("reminder_offsets",),
    "webhook": ("webhook_url", "webhook_secret"), "admin-emails": ("admin_emails",),
}
SOURCE_HELP = "env:VARIABLE, file:PATH or - (standard input); never the secret itself"


def read_secret(option: str, source: str, stdin: Callable[[], str]) -> str:
    """The secret ``source`` names: ``env:NAME``, ``file:PATH`` or ``-``. A value of any
    other form is refused without being echoed: it may be the secret itself."""
    if source == "-":
        value = stdin()
    elif source.startswith("env:"):
        name = source[4:]
        if name not in os.environ:
            raise click.BadParameter(f"the environment variable {name!r} is not set", param_hint=option)
        value = os.environ[name]
    elif source.startswith("file:"):
        try:
            value = Path(source[5:]).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(f"cannot read {source[5:]!r}: {type(exc).__name__}", param_hint=option) from None
    else:
        raise click.BadParameter(f"give where to read the secret: {SOURCE_HELP} (a secret on the command line "
                                 "shows in ps and the shell history)", param_hint=option)
    value = value.strip()
    if not value:
        raise click.BadParameter("the secret read is empty", param_hint=option)
    return value


def _secrets(given: dict[str, str | None]) -> dict[str, str]:
    """Read each secret option given (at most one from standard input)."""
    if sum(1 for source in given.values() if source == "-") > 1:
        raise click.UsageError("only one secret can be read from standard input (-)")

    def from_stdin() -> str:
        return sys.stdin.read()

    return {field: read_secret(SECRET_OPTIONS[field], source, from_stdin)
            for field, source in given.items() if source is not None}


def settings_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options ``add`` and ``update`` share: every setting of a clinic."""
    options = [
        click.option("--name", default=None, help="The clinic's name, for people (mails, the admin page)."),
        click.option("--zoom-account-id", default=None, help="Its Zoom server-to-server app: the account id."),
        click.option("--zoom-client-id", default=None, help="Its server-to-server app's client id."),
        click.option("--zoom-client-secret", default=None, metavar="SOURCE",
                     help=f"Its server-to-server app's client secret: {SOURCE_HELP}."),
        click.option("--oauth-client-id", "zoom_oauth_client_id", default=None,
                     help="Its user-managed Zoom OAuth app (doctors connect their own accounts): client id."),
        click.option("--oauth-client-secret", "zoom_oauth_client_secret", default=None, metavar="SOURCE",
                     help=f"Its OAuth app's client secret: {SOURCE_HELP}."),
        click.option("--zoom-webhook-secret", default=None, metavar="SOURCE",
                     help=f"Its Zoom app's webhook secret token: {SOURCE_HELP}."),
        click.option("--mail-from", default=None, help="Sender: 'Name <address>' (default: TELEMED_MAIL_FROM)."),
        click.option("--reply-to", "mail_reply_to", default=None, help="Reply-To address of its mails."),
        click.option("--display-name", "mail_display_name", default=None, help="Sender name shown in its mails."),
        click.option("--reminder-offsets", default=None,
                     help="Like 24h,15m; empty for none (default: TELEMED_REMINDER_OFFSETS)."),
        click.option("--webhook-url", default=None, help="Its booking system's status webhook (https)."),
        click.option("--webhook-secret", default=None, metavar="SOURCE",
                     help=f"The secret that signs its status webhook: {SOURCE_HELP}."),
        click.option("--admin-email", "admin_emails", multiple=True,
                     help="An admin's address (repeat for several); given on update, replaces the list."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def changes_given(values: dict[str, Any]) -> dict[str, object]:
    """The settings given on the command line, secrets read from their sources."""
    secret_sources = {field: values.pop(field) for field in SECRET_OPTIONS}
    changes: dict[str, object] = {k: v for k, v in values.items() if v is not None and k != "admin_emails"}
    if values.get("admin_emails"):
        changes["admin_emails"] = list(values["admin_emails"])
    changes.update(_secrets(secret_sources))
    return changes
