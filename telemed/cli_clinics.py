"""``telemed clinics``: the clinics this deployment serves besides the default one.

``add``, ``update``, ``list``, ``show``, ``suspend``/``resume``, their ingress keys
(``ingress-key add|retire|list``) and the events refused for naming another clinic
(``refusals``). The default clinic is configured from environment variables (TELEMED_*)
and is only shown here.

Secrets are never command-line arguments (every user of the host sees those in ``ps``,
and the shell keeps them in its history): a secret option names where to read it,
``env:VARIABLE``, ``file:PATH`` or ``-`` for standard input (one option at most). A
secret is never printed, only whether it is set. A change reaches every running process
within the clinic directory's cache time (5 s; store.clinic_directory).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from telemed.cli_clinic_options import CLEARABLE, CLEARS, changes_given, settings_options
from telemed.settings import get_settings


def _fail(message: str, code: int = 2) -> None:
    click.echo(click.style("error: ", fg="red", bold=True) + message, err=True)
    sys.exit(code)


@contextmanager
def _session() -> Iterator[Any]:
    # lazy: telemed --help must not import the whole pipeline
    from telemed.bootstrap import database

    db = database(get_settings())
    try:
        with db.session() as session:
            yield session
    finally:
        db.dispose()


@contextmanager
def _registry_errors() -> Iterator[None]:
    """The registry's refusals as one clear line each (never a traceback)."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.store.clinics import ClinicError, ClinicNotFound
    from telemed.store.ingress_keys import TooManyKeys

    try:
        yield
    except (ClinicError, TooManyKeys) as exc:
        _fail(str(exc))
    except ClinicNotFound as exc:
        _fail(f"{exc.args[0]} (see telemed clinics list)", code=1)


@click.group()
def clinics() -> None:
    """Clinics (tenants): their settings, ingress keys and refused events."""


@clinics.command("add")
@click.argument("clinic_id")
@settings_options
def add(clinic_id: str, **values: Any) -> None:
    """Register clinic CLINIC_ID (1-40 of a-z, 0-9 and -; never 'default'), active at once."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.store.clinics import add_clinic

    if values["name"] is None:
        raise click.UsageError("--name is required")
    changes = changes_given(values)
    with _registry_errors(), _session() as session:
        add_clinic(session, clinic_id, **changes)  # type: ignore[arg-type]
    click.echo(f"clinic {clinic_id} added. Next: telemed clinics ingress-key add {clinic_id} "
               "(the key its booking system signs events with), then telemed keys create --clinic "
               f"{clinic_id} --role admin.")


@clinics.command("update")
@click.argument("clinic_id")
@settings_options
@click.option("--clear", "clear", multiple=True, type=click.Choice(CLEARABLE),
              help="Remove a setting (repeatable); the clinic falls back to the deployment's where there is one.")
def update(clinic_id: str, clear: tuple[str, ...], **values: Any) -> None:
    """Change some settings of CLINIC_ID (only those given; --clear to remove one)."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.store.clinics import update_clinic

    changes = changes_given(values)
    for name in clear:
        for field in CLEARS[name]:
            if field in changes:
                raise click.UsageError(f"--clear {name} and a new value for it: give one of them")
            changes[field] = None
    if not changes:
        raise click.UsageError("nothing to change: give at least one setting or --clear")
    with _registry_errors(), _session() as session:
        update_clinic(session, clinic_id, **changes)
    click.echo(f"clinic {clinic_id} updated ({', '.join(sorted(changes))}); running processes use it within 5 s.")


@clinics.command("suspend")
@click.argument("clinic_id")
def suspend(clinic_id: str) -> None:
    """Refuse CLINIC_ID's events (403) until it is resumed; its data stays."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.store.clinics import suspend_clinic

    with _registry_errors(), _session() as session:
        changed = suspend_clinic(session, clinic_id)
    click.echo(f"clinic {clinic_id} {'suspended' if changed else 'was already suspended'}")


@clinics.command("resume")
@click.argument("clinic_id")
def resume(clinic_id: str) -> None:
    """Accept CLINIC_ID's events again."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.store.clinics import resume_clinic

    with _registry_errors(), _session() as session:
        changed = resume_clinic(session, clinic_id)
    click.echo(f"clinic {clinic_id} {'resumed' if changed else 'was already active'}")


@clinics.command("list")
def list_() -> None:
    """Every clinic: the default one (from the environment) first."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.store.clinics import list_clinics
    from telemed.store.ingress_keys import active_counts

    with _session() as session:
        rows, counts = list_clinics(session), active_counts(session)
    table = Table(title="clinics")
    for column in ("id", "name", "status", "zoom", "ingress keys", "admins"):
        table.add_column(column)
    table.add_row("default", "(from environment variables)", "active", "TELEMED_ZOOM_*", "TELEMED_INGRESS_SECRET",
                  "TELEMED_ADMIN_EMAIL")
    for row in rows:
        zoom = ", ".join(kind for kind, on in (("account", row.zoom_client_secret), ("oauth", row.zoom_oauth_client_secret))
                         if on) or "-"
        table.add_row(row.id, row.name, row.status, zoom, str(counts.get(row.id, 0)),
                      str(len([a for a in row.admin_emails.split(",") if a])))
    Console(width=120).print(table)


@clinics.command("show")
@click.argument("clinic_id")
def show(clinic_id: str) -> None:
    """A clinic's settings; of each secret only whether it is set."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.foundation.tenancy import DEFAULT_CLINIC
    from telemed.settings import default_profile
    from telemed.store.clinic_directory import profile_of
    from telemed.store.clinics import live_clinic
    from telemed.store.ingress_keys import list_keys

    if clinic_id == DEFAULT_CLINIC:
        profile, keys, source = default_profile(get_settings()), [], " (from environment variables)"
    else:
        with _registry_errors(), _session() as session:
            profile = profile_of(live_clinic(session, clinic_id))
            keys = [k for k in list_keys(session, clinic_id) if k.active]
        source = ""

    def setting(value: object) -> str:
        return str(value) if value not in (None, "") else "- (the deployment's)"

    def secret(value: object) -> str:
        return "set" if value else "not set"

    account, oauth = profile.zoom_account, profile.zoom_oauth
    lines = [
        ("clinic", f"{profile.clinic_id}{source}"), ("name", profile.name), ("status", profile.status),
        ("zoom account", f"{account.account_id} (client id {account.client_id}, secret set)" if account else "-"),
        ("zoom oauth app", f"client id {oauth.client_id} (secret set)" if oauth else "-"),
        ("zoom webhook secret", secret(profile.zoom_webhook_secret)), ("mail from", setting(profile.mail_from)),
        ("reply-to", setting(profile.mail_reply_to)), ("display name", setting(profile.mail_display_name)),
        ("reminder offsets", setting(profile.reminder_offsets)), ("webhook url", setting(profile.webhook_url)),
        ("webhook secret", secret(profile.webhook_secret)),
        ("admins", ", ".join(profile.admin_emails) or "-"),
        ("ingress keys", ", ".join(k.key_id for k in keys) or "-" if clinic_id != DEFAULT_CLINIC
         else "TELEMED_INGRESS_SECRET (no key id)"),
    ]
    for label, value in lines:
        click.echo(f"{label + ':':<21}{value}")


@clinics.group("ingress-key")
def ingress_key() -> None:
    """The keys a clinic's booking system signs events with (two active at most, for rotation)."""


@ingress_key.command("add")
@click.argument("clinic_id")
def key_add(clinic_id: str) -> None:
    """Make a key for CLINIC_ID; its id and secret are printed this once."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.store.ingress_keys import add_key

    with _registry_errors(), _session() as session:
        info, secret = add_key(session, clinic_id)
    click.echo(f"key id: {info.key_id}")
    click.echo(f"secret: {secret}")
    click.echo(f"Give both to clinic {clinic_id}'s booking system (header X-Telemed-Key-Id, HMAC secret): "
               "this is the only time the secret is shown.", err=True)


@ingress_key.command("retire")
@click.argument("key_id")
def key_retire(key_id: str) -> None:
    """Stop accepting events signed with KEY_ID, at once."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.store.ingress_keys import retire_key

    with _session() as session:
        retired = retire_key(session, key_id.strip())
    if retired is None:
        _fail(f"no active ingress key {key_id.strip()!r}", code=1)
        return
    click.echo(f"key {retired.key_id} of clinic {retired.clinic_id} retired")


@ingress_key.command("list")
@click.argument("clinic_id")
def key_list(clinic_id: str) -> None:
    """CLINIC_ID's keys, active and retired (never their secrets)."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.store.clinics import live_clinic
    from telemed.store.ingress_keys import list_keys

    with _registry_errors(), _session() as session:
        live_clinic(session, clinic_id)
        keys = list_keys(session, clinic_id)
    table = Table(title=f"ingress keys of {clinic_id}")
    for column in ("key id", "state", "created", "last used", "retired"):
        table.add_column(column)
    for key in keys:
        table.add_row(key.key_id, "active" if key.active else "retired", _when(key.created_at),
                      _when(key.last_used_at), _when(key.retired_at))
    Console(width=120).print(table)


@clinics.command("refusals")
@click.argument("clinic_id")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
def refusals(clinic_id: str, limit: int) -> None:
    """Events signed with CLINIC_ID's keys that named another clinic (refused, 403), newest first."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.store.ingress_keys import refusals as refused

    with _session() as session:
        rows = refused(session, clinic_id, limit)
    for row in rows:
        click.echo(f"{_when(row.at)}  key {row.key_id or '-'}  named {row.named_clinic_id!r}  "
                   f"event {row.event_id or '-'}  ({row.reason})")
    click.echo(f"{len(rows)} refused event(s)")


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


# A clinic's data (export, erasure) lives beside its parts: telemed.cli_clinic_data.
from telemed.cli_clinic_data import delete, export  # noqa: E402

for _command in (export, delete):
    clinics.add_command(_command)
