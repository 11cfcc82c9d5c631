"""``telemed webhook status|enable``: the booking system's status webhook switch.

A 410 Gone answer disables the configured TELEMED_WEBHOOK_URL (one admin alert); once the
receiver is fixed, ``telemed webhook enable`` turns it back on. A new URL starts enabled.
"""

from __future__ import annotations

import sys

import click

from telemed.settings import get_settings


@click.group()
def webhook() -> None:
    """The signed status webhook to the booking system."""


def _database():  # type: ignore[no-untyped-def]
    # lazy: telemed --help must not import the whole pipeline
    from telemed.bootstrap import database as build_database

    return build_database(get_settings())


@webhook.command("status")
def status() -> None:
    """Say whether the configured webhook is enabled."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.store.notifications import webhook_disabled

    url = get_settings().webhook_url
    if not url:
        click.echo("no webhook configured (TELEMED_WEBHOOK_URL is not set)")
        return
    with _database().session() as session:
        disabled = webhook_disabled(session, url)
    click.echo("disabled (the receiver answered 410 Gone); run 'telemed webhook enable' once it is fixed"
               if disabled else "enabled")
    sys.exit(1 if disabled else 0)


@webhook.command("enable")
def enable() -> None:
    """Turn the configured webhook back on after a 410 Gone."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.store.notifications import enable_webhook

    url = get_settings().webhook_url
    if not url:
        click.echo("error: TELEMED_WEBHOOK_URL is not set", err=True)
        sys.exit(2)
    with _database().session() as session:
        changed = enable_webhook(session, url)
    click.echo("webhook enabled" if changed else "webhook was already enabled")
