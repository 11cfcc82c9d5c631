"""``telemed webhook status|enable``: the booking system's status webhook switch.

A 410 Gone answer disables the configured TELEMED_WEBHOOK_URL (one admin alert); once the
receiver is fixed, ``telemed webhook enable`` turns it back on. A new URL starts enabled.
With ``--clinic ID``, the clinic's own webhook (its profile's URL); the default clinic's is
TELEMED_WEBHOOK_URL. Each clinic's switch is its own (``store.notifications.webhook_key``
of the clinic and the URL, as the delivery worker keeps it), so two clinics sending to one
receiver never read or turn on each other's.
"""

from __future__ import annotations

import sys

import click

from telemed.clinic_scope import clinic_option, require_clinic
from telemed.foundation.tenancy import DEFAULT_CLINIC
from telemed.settings import get_settings


@click.group()
def webhook() -> None:
    """The signed status webhook to the booking system."""


def _database():  # type: ignore[no-untyped-def]
    # lazy: telemed --help must not import the whole pipeline
    from telemed.bootstrap import database as build_database

    return build_database(get_settings())


def _webhook_url(database, clinic_id: str) -> str | None:  # type: ignore[no-untyped-def]
    """The clinic's status webhook URL (the default clinic's: TELEMED_WEBHOOK_URL)."""
    require_clinic(database, clinic_id)
    if clinic_id == DEFAULT_CLINIC:
        return get_settings().webhook_url
    # lazy: telemed --help must not import the whole pipeline
    from telemed.store.clinic_lookup import webhook_url

    with database.session() as session:
        return webhook_url(session, clinic_id)


def _not_set(clinic_id: str) -> str:
    return ("TELEMED_WEBHOOK_URL is not set" if clinic_id == DEFAULT_CLINIC
            else f"clinic {clinic_id} has no webhook URL")


@webhook.command("status")
@clinic_option
def status(clinic_id: str) -> None:
    """Say whether the clinic's webhook is enabled."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.store.notifications import webhook_disabled

    database = _database()
    url = _webhook_url(database, clinic_id)
    if not url:
        click.echo(f"no webhook configured ({_not_set(clinic_id)})")
        return
    with database.session() as session:
        disabled = webhook_disabled(session, url, clinic_id)
    again = "telemed webhook enable" + ("" if clinic_id == DEFAULT_CLINIC else f" --clinic {clinic_id}")
    click.echo(f"disabled (the receiver answered 410 Gone); run '{again}' once it is fixed"
               if disabled else "enabled")
    sys.exit(1 if disabled else 0)


@webhook.command("enable")
@clinic_option
def enable(clinic_id: str) -> None:
    """Turn the clinic's webhook back on after a 410 Gone."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.store.notifications import enable_webhook

    database = _database()
    url = _webhook_url(database, clinic_id)
    if not url:
        click.echo(f"error: {_not_set(clinic_id)}", err=True)
        sys.exit(2)
    with database.session() as session:
        changed = enable_webhook(session, url, clinic_id)
    click.echo("webhook enabled" if changed else "webhook was already enabled")
