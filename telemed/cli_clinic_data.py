"""``telemed clinics export ID`` and ``telemed clinics delete ID``: a clinic's own data out,
and the clinic with all its data gone (docs/operations.md, "Deleting a clinic").

Both commands are attached to the ``telemed clinics`` group (``telemed.cli_clinics``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click

from telemed.foundation.tenancy import DEFAULT_CLINIC, InvalidClinicId, check_clinic_id
from telemed.settings import get_settings


def _database():  # type: ignore[no-untyped-def]
    # lazy: telemed --help must not import the whole pipeline
    from telemed.bootstrap import database

    return database(get_settings())


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@contextmanager
def _store_errors() -> Iterator[None]:
    """A database that is down or not migrated gets one line, not a traceback."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    try:
        yield
    except (OperationalError, ProgrammingError) as exc:
        _fail(f"the database is not reachable or not set up ({type(exc.orig).__name__}); "
              "check TELEMED_DATABASE_URL and run 'telemed db upgrade'", 2)


def _clinic_id(value: str) -> str:
    try:
        return check_clinic_id(value)
    except InvalidClinicId as exc:
        raise click.BadParameter(str(exc), param_hint="ID") from None


# export -----------------------------------------------------------------------------------


def _default_name(clinic_id: str) -> Path:
    return Path(f"telemed-export-{clinic_id}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json")


@click.command("export")
@click.argument("clinic_id", metavar="ID")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The file to write (default: telemed-export-ID-<UTC time>.json here; '-' for standard "
                   "output). Never overwritten, and readable by its owner only (0600): it holds patient data.")
@click.option("--page-size", type=click.IntRange(10, 10_000), default=500, show_default=True,
              help="Rows read per query (memory stays bounded whatever the clinic's size).")
def export(clinic_id: str, out: Path | None, page_size: int) -> None:
    """Write everything clinic ID owns as one JSON document, in the clinic's own ids."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.store.clinic_export import ExportRefused, clinic_row, write_export

    clinic_id = _clinic_id(clinic_id)
    database = _database()
    with _store_errors():
        try:
            with database.session() as session:
                clinic_row(session, clinic_id)
        except ExportRefused as exc:
            _fail(str(exc))
        if out is not None and str(out) == "-":
            counts = write_export(database, clinic_id, sys.stdout, page_size=page_size)
            target = "standard output"
        else:
            path = out or _default_name(clinic_id)
            counts = _write_file(path, lambda f: write_export(database, clinic_id, f, page_size=page_size))
            target = str(path)
    summary = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in counts.items())
    click.echo(f"clinic {clinic_id} exported to {target}: {summary}", err=True)


def _write_file(path: Path, write):  # type: ignore[no-untyped-def]
    """Create ``path`` (never over an existing file) readable by its owner only, write it,
    and remove it again if writing fails: no half-written export is left behind."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        _fail(f"{path} exists; an export never overwrites a file (choose another --out)")
    except OSError as exc:
        _fail(f"cannot create {path}: {exc.strerror}")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            return write(handle)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


# delete -----------------------------------------------------------------------------------


@click.command("delete")
@click.argument("clinic_id", metavar="ID")
@click.option("--confirm", "confirmation", metavar="ID", default=None,
              help="The clinic's id once more (asked for when not given).")
@click.option("--delete-zoom-meetings", is_flag=True,
              help="Delete the clinic's meetings still to come in Zoom first (through its own Zoom app).")
@click.option("--leave-zoom-meetings", is_flag=True,
              help="Leave the clinic's meetings still to come in Zoom as they are.")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=500, show_default=True,
              help="Rows deleted per transaction.")
def delete(clinic_id: str, confirmation: str | None, delete_zoom_meetings: bool, leave_zoom_meetings: bool,
           batch_size: int) -> None:
    """Delete clinic ID: its secrets, doctors, patients' appointments, everything it owns.

    The clinic's id stays as a tombstone (never given again). Interrupted, the same command
    finishes the job. The default clinic cannot be deleted.
    """
    # lazy: telemed --help must not import the whole pipeline
    from telemed.bootstrap import redis_client
    from telemed.clinic_deletion import DeletionRefused, ZoomMeetings, delete_clinic
    from telemed.store.clinic_erasure import ErasureRefused, clinic_status
    from telemed.zoom.errors import ZoomError

    clinic_id = _clinic_id(clinic_id)
    if delete_zoom_meetings and leave_zoom_meetings:
        raise click.UsageError("--delete-zoom-meetings and --leave-zoom-meetings exclude each other")
    if clinic_id == DEFAULT_CLINIC:
        _fail("the default clinic cannot be deleted: it is configured by the environment (TELEMED_* settings)")
    settings = get_settings()
    database = _database()
    with _store_errors():
        try:
            with database.session() as session:
                clinic_status(session, clinic_id)
        except ErasureRefused as exc:
            _fail(str(exc))
    if confirmation is None:
        confirmation = click.prompt(f"This erases clinic {clinic_id} and all its data. Type its id to confirm",
                                    default="", show_default=False)
    if confirmation != clinic_id:
        _fail(f"the confirmation does not match {clinic_id}: nothing was deleted", 2)

    mode = (ZoomMeetings.DELETE if delete_zoom_meetings else
            ZoomMeetings.LEAVE if leave_zoom_meetings else ZoomMeetings.REFUSE)
    with _store_errors():
        try:
            report = delete_clinic(
                database, redis_client(settings), settings.redis_namespace, clinic_id, zoom_meetings=mode,
                delete_zoom_meetings=_zoom_teardown(database) if delete_zoom_meetings else None,
                batch_size=batch_size,
            )
        except DeletionRefused as exc:
            _fail(str(exc))
        except ZoomError as exc:
            _fail(f"Zoom did not delete a meeting ({type(exc).__name__}: {exc}). No row was erased; clinic "
                  f"{clinic_id} is closed (deleting). Run the same command again to carry on.")
    _print_report(report)


def _zoom_teardown(database):  # type: ignore[no-untyped-def]
    """Deletes the clinic's upcoming meetings with the workers' Zoom wiring."""
    # lazy: telemed --help must not import the whole pipeline
    import functools

    from telemed.bootstrap import broker, worker_context
    from telemed.workers.meetings.teardown import delete_upcoming_meetings
    from telemed.workers.queue.work_queue import WorkQueue

    settings = get_settings()
    context = worker_context(settings, WorkQueue(broker(settings)))
    context.database = database  # share this command's engine
    return functools.partial(delete_upcoming_meetings, context)


def _print_report(report) -> None:  # type: ignore[no-untyped-def]
    if report.already_erased:
        click.echo(f"clinic {report.clinic_id} was already erased; Redis swept again:")
    else:
        click.echo(f"clinic {report.clinic_id} deleted; its id is kept as a tombstone.")
        if report.zoom is not None:
            click.echo(f"zoom meetings deleted: {report.zoom.deleted} (already gone: {report.zoom.already_gone})")
        if report.meetings_left:
            click.echo(f"zoom meetings left in Zoom: {report.meetings_left}")
        click.echo("rows removed:")
        width = max(len(t) for t in report.rows) if report.rows else 0
        for table, count in report.rows.items():
            click.echo(f"  {table.ljust(width)}  {count}")
        click.echo("redis:")
    for kind, count in report.redis.items():
        click.echo(f"  {kind}: {count}")
