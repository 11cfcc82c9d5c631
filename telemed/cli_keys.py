"""``telemed keys create|list|revoke``: API keys for the access API.

A key is shown once, when it is made; only its SHA-256 hash is stored, and it is found
again by its public prefix (``tmk_<prefix>_...``), which is what ``list`` and ``revoke`` use.
"""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.table import Table

from telemed.logging import setup_cli_logging as _setup_logging
from telemed.settings import get_settings


def _database():  # type: ignore[no-untyped-def]
    # lazy: telemed --help must not import the whole pipeline
    from telemed.bootstrap import database as build_database

    return build_database(get_settings())


@click.group()
def keys() -> None:
    """API keys and encryption keys."""


@keys.command("create")
@click.option("--role", required=True, metavar="admin|booking|doctor:ID",
              help="What the key may see of its clinic: admin (everything), booking (status and join "
                   "links), doctor:ID (that doctor's appointments, with start links; the clinic's doctor id).")
@click.option("--clinic", "clinic_id", default="default", show_default=True,
              help="The clinic whose data the key reaches (nothing of any other clinic's).")
@click.option("--label", default=None, help="A note for people: who or what uses the key.")
def create(role: str, clinic_id: str, label: str | None) -> None:
    """Make an API key and print it once."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.foundation.tenancy import DEFAULT_CLINIC
    from telemed.store.api_keys import ROLE_PATTERN, create_key
    from telemed.store.clinics import ClinicNotFound, live_clinic

    if not ROLE_PATTERN.match(role):
        raise click.BadParameter("must be admin, booking or doctor:<doctor id> "
                                 "(letters, digits and . _ : - in the id)", param_hint="--role")
    if label is not None and len(label) > 200:
        raise click.BadParameter("at most 200 characters", param_hint="--label")
    with _database().session() as session:
        if clinic_id != DEFAULT_CLINIC:
            try:
                live_clinic(session, clinic_id)
            except ClinicNotFound:
                raise click.BadParameter(f"no clinic {clinic_id!r} (see telemed clinics list)",
                                         param_hint="--clinic") from None
        row, plaintext = create_key(session, role, label, clinic_id=clinic_id)
        prefix = row.prefix
    click.echo(plaintext)
    click.echo(f"key {prefix} for role {role} of clinic {clinic_id} created; this is the only time it is shown. "
               "Send it as 'Authorization: Bearer <key>'.", err=True)


@keys.command("list")
@click.option("--clinic", "clinic_id", default=None, help="Only this clinic's keys.")
def list_(clinic_id: str | None) -> None:
    """List API keys (prefix, clinic, role, label, dates); never the keys themselves."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.store.api_keys import list_keys

    with _database().session() as session:
        rows = list_keys(session, clinic_id)
    table = Table(title="API keys")
    for column in ("prefix", "clinic", "role", "label", "created", "last used", "revoked"):
        table.add_column(column)

    def when(moment) -> str:  # type: ignore[no-untyped-def]
        return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"

    for row in rows:
        table.add_row(row.prefix, row.clinic_id, row.role, row.label or "-", when(row.created_at), when(row.last_used_at),
                      when(row.revoked_at))
    Console(width=120).print(table)


@keys.command("revoke")
@click.argument("prefix")
def revoke(prefix: str) -> None:
    """Revoke the key with PREFIX (as shown by 'telemed keys list')."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.store.api_keys import revoke_key

    prefix = prefix.strip()
    if prefix.startswith("tmk_"):  # a whole key pasted: take its prefix, never echo the rest
        prefix = prefix.split("_")[1] if prefix.count("_") >= 2 else ""
    with _database().session() as session:
        done = revoke_key(session, prefix)
    if not done:
        click.echo(f"error: no active key with prefix {prefix!r}", err=True)
        sys.exit(1)
    click.echo(f"key {prefix} revoked")


# ``telemed keys rotate``: re-encrypt every stored secret under the newest key.
#
# Rotation in three steps (docs/deploy.md): put a new key first in TELEMED_SECRET_KEYS
# everywhere (the old ones stay, so everything still decrypts), run this, then remove the
# old keys. Safe to run again: values already under the newest key are left alone.
@keys.command("rotate")
def rotate() -> None:
    """Re-encrypt every stored secret (all tables) under the first key of TELEMED_SECRET_KEYS."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.bootstrap import database as build_database
    from telemed.foundation.cipher import DecryptionError
    from telemed.store.rotation import rotate_all

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
    click.echo(f"{report.reindexed} patient search index(es) made again under the newest key.")
    if len(fernet_keys) > 1:
        click.echo("Every stored value now uses the newest key: the older keys can be removed from "
                   "TELEMED_SECRET_KEYS once every process runs with the new list (and within an hour, "
                   "when Redis-cached tokens encrypted under them have expired).")
