"""``telemed doctors connect-link D-7`` and ``telemed doctors list`` (``--clinic ID``: that
clinic's doctors, by its own ids).

A connect link lets the doctor attach their own Zoom account (``web/oauth.py``). It is a
credential: printed on demand, never stored. Doctors are known from their first booking;
``--name/--email`` register one before any booking arrives.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import click
from rich.console import Console
from rich.table import Table

from telemed.clinic_scope import clinic_option, key_in, require_clinic
from telemed.settings import Settings, get_settings


def _database():  # type: ignore[no-untyped-def]
    # lazy: telemed --help must not import the whole pipeline
    from telemed.bootstrap import database as build_database

    return build_database(get_settings())


@contextmanager
def _store_errors() -> Iterator[None]:
    """A database that is down or not migrated gets one line, not a traceback."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    try:
        yield
    except (OperationalError, ProgrammingError) as exc:
        click.echo(f"error: the database is not reachable or not set up ({type(exc.orig).__name__}); "
                   "check TELEMED_DATABASE_URL and run 'telemed db upgrade'", err=True)
        sys.exit(2)


@click.group()
def doctors() -> None:
    """Doctors and their Zoom connections."""


@doctors.command("connect-link")
@click.argument("doctor_id")
@click.option("--ttl", "ttl_seconds", type=click.IntRange(60, 90 * 24 * 3600), default=None,
              help="Seconds the link stays valid (default: TELEMED_CONNECT_LINK_TTL_SECONDS, 7 days).")
@click.option("--name", default=None, help="Register the doctor first (with --email) if not yet known.")
@click.option("--email", default=None, help="The doctor's e-mail (with --name).")
@click.option("--zoom-user", default=None, help="Their Zoom user for the account app (default: --email).")
@clinic_option
def connect_link(doctor_id: str, ttl_seconds: int | None, name: str | None, email: str | None,
                 zoom_user: str | None, clinic_id: str) -> None:
    """Print a signed, expiring link DOCTOR_ID (of the clinic) opens to connect their own Zoom account."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.events.rules import EmailProblem, ascii_email, text_problem
    from telemed.foundation.connect_links import connect_url, make_connect_token
    from telemed.store import appointments

    settings = get_settings()
    if not settings.public_url:
        raise click.UsageError("TELEMED_PUBLIC_URL is not set: the link must point at this service's web address")
    if (name is None) != (email is None):
        raise click.UsageError("--name and --email go together")
    ttl = timedelta(seconds=ttl_seconds or settings.connect_link_ttl_seconds)
    database = _database()
    with _store_errors():
        require_clinic(database, clinic_id)
    key = key_in(clinic_id, doctor_id)
    if key is None:
        raise click.BadParameter("a doctor id has no '/'", param_hint="DOCTOR_ID")
    if not _clinic_has_oauth_app(settings, database, clinic_id):
        raise click.UsageError(f"clinic {clinic_id} has no Zoom OAuth app (the default clinic: "
                               "TELEMED_ZOOM_OAUTH_CLIENT_ID and TELEMED_ZOOM_OAUTH_CLIENT_SECRET; another: "
                               "telemed clinics update --oauth-client-id/--oauth-client-secret): "
                               "doctors connect through their clinic's user-managed Zoom OAuth app")
    try:
        token = make_connect_token(settings.fernet_keys, key, ttl)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="DOCTOR_ID") from None
    with _store_errors(), database.session() as session:
        if name is not None and email is not None:
            try:  # the event contract's rule: the notifier must be able to write to it
                address = ascii_email(email)
            except EmailProblem as exc:
                raise click.BadParameter(str(exc), param_hint="--email") from None
            name = name.strip()[:200]
            problem = text_problem(name) if name else "must not be empty"
            if problem:
                raise click.BadParameter(problem, param_hint="--name")
            appointments.upsert_doctor(session, id=key, name=name, email=address,
                                       zoom_user=zoom_user or address, clinic_id=clinic_id)
        elif appointments.get_doctor(session, key) is None:  # another clinic's is not known here either
            click.echo(f"error: doctor {doctor_id} is not known yet (doctors appear with their first booking); "
                       "register them with --name and --email", err=True)
            sys.exit(2)
    click.echo(connect_url(settings.public_url, token))
    expires = (datetime.now(UTC) + ttl).strftime("%Y-%m-%d %H:%M UTC")
    click.echo(f"connect link for {doctor_id}, valid until {expires}; send it to the doctor only "
               "(whoever opens it can attach a Zoom account to this doctor).", err=True)


@doctors.command("list")
@clinic_option
def list_(clinic_id: str) -> None:
    """A clinic's doctors and their Zoom connection: none, connected, needs_reconnect."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.foundation.tenancy import external_id
    from telemed.store.zoom_tokens import connection_rows

    database = _database()
    with _store_errors():
        require_clinic(database, clinic_id)
    with _store_errors(), database.session() as session:
        rows = connection_rows(session, clinic_id)
        table = Table(title="Doctors")
        for column in ("id", "name", "zoom user", "connection", "token version", "token expires",
                       "last refresh"):
            table.add_column(column)
        for doctor, token in rows:
            state = token.status if token is not None else doctor.connection
            table.add_row(
                external_id(doctor.id), doctor.name, doctor.zoom_user, state,
                str(token.version) if token else "-",
                _when(token.expires_at) if token else "-",
                _when(token.refreshed_at) if token else "-",
            )
    console = Console()
    if not console.is_terminal:  # piped: don't squeeze the table to 80 columns
        console = Console(width=200)
    console.print(table)
    if not rows:
        click.echo("no doctors yet: they appear with their first booking", err=True)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


def _clinic_has_oauth_app(settings: Settings, database, clinic_id: str) -> bool:  # type: ignore[no-untyped-def]
    """Doctors connect through their own clinic's OAuth app: the clinic of ``--clinic``, whose
    doctor the link names (never the default clinic's app for another clinic's doctor)."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.bootstrap import clinic_directory
    from telemed.foundation.tenancy import UnknownClinic
    from telemed.zoom.apps import oauth_app

    try:
        return oauth_app(clinic_directory(settings, database).profile(clinic_id)) is not None
    except UnknownClinic:
        return False
