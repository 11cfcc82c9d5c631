"""``telemed keys rotate``: re-encrypt every stored secret under the newest key.

Rotation in three steps (docs/deploy.md): put a new key first in TELEMED_SECRET_KEYS
everywhere (the old ones stay, so everything still decrypts), run this, then remove the
old keys. Safe to run again: values already under the newest key are left alone.
"""

from __future__ import annotations

import sys

import click

from telemed.cli import _setup_logging, keys
from telemed.settings import get_settings


@keys.command("rotate")
def rotate() -> None:
    """Re-encrypt every stored secret (all tables) under the first key of TELEMED_SECRET_KEYS."""
    from foundation.cipher import DecryptionError
    from store.rotation import rotate_all
    from telemed.bootstrap import database as build_database

    _setup_logging()
    settings = get_settings()
    fernet_keys = settings.fernet_keys
    database = build_database(settings)
    try:
        report = rotate_all(database, fernet_keys,
                            progress=lambda column, count: click.echo(f"{column}: {count} re-encrypted"))
    except DecryptionError as exc:
        click.echo(click.style("error: ", fg="red", bold=True) + str(exc), err=True)
        sys.exit(1)
    finally:
        database.dispose()
    click.echo(f"{report.total_rotated} value(s) re-encrypted under the newest key; "
               f"{sum(report.current.values())} already were.")
    if len(fernet_keys) > 1:
        click.echo("Every stored value now uses the newest key: the older keys can be removed from "
                   "TELEMED_SECRET_KEYS once every process runs with the new list (and within an hour, "
                   "when Redis-cached tokens encrypted under them have expired).")
