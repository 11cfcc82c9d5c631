"""The ``telemed`` command. Each subcommand is a thin shell over a module that does the work."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO

import click

from telemed.cli_clinics import clinics
from telemed.cli_dlq import dlq
from telemed.cli_doctors import doctors
from telemed.cli_keys import keys
from telemed.cli_notifications import webhook
from telemed.clinic_scope import clinic_option
from telemed.logging import setup_cli_logging as _setup_logging
from telemed.settings import SettingsError, get_settings


def _fail(message: str) -> None:
    click.echo(click.style("error: ", fg="red", bold=True) + message, err=True)
    sys.exit(2)


class _Group(click.Group):
    """Turns configuration errors into one clear line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            _fail(str(exc))
        return None


@click.group(cls=_Group)
@click.version_option(package_name="telemed")
def main() -> None:
    """Appointment events in, secure Zoom meetings and role-filtered notifications out."""


@main.command()
@click.option("--bookings", default=25, show_default=True, help="How many sample bookings.")
@click.option("--dir", "directory", default="telemed-demo", show_default=True, type=click.Path(path_type=Path),
              help="Where the demo keeps its database, mail and logs (wiped at start).")
@click.option("--workers", default=1, show_default=True, help="Worker processes.")
@click.option("--threads", default=8, show_default=True, help="Threads per worker process.")
def demo(bookings: int, directory: Path, workers: int, threads: int) -> None:
    """Run the whole pipeline on embedded defaults with sample bookings."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.demo import run_demo

    sys.exit(run_demo(bookings=bookings, directory=directory, processes=workers, threads=threads))


@main.command()
@click.option("--processes", "-p", type=int, default=None, help="Worker processes (default: CPU count).")
@click.option("--threads", "-t", type=int, default=8, show_default=True, help="Threads per process.")
@click.option("--queues", "-Q", multiple=True, help="Only these queues (default: all).")
@click.option("--nice", type=click.IntRange(0, 19), default=0, show_default=True,
              help="Lower the workers' CPU priority by this much, so a web server on the same host "
                   "keeps answering promptly while they are busy (telemed run uses 10).")
def worker(processes: int | None, threads: int, queues: tuple[str, ...], nice: int) -> None:
    """Run Dramatiq worker processes for the pipeline's actors."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.worker import run_workers

    get_settings()  # fail fast on bad configuration before forking
    sys.exit(run_workers(processes=processes or os.cpu_count() or 1, threads=threads, queues=queues, nice=nice))


@main.command()
@click.argument("source", type=click.File("rb"))
@click.option("--clinic", "clinic_id", default="default", show_default=True,
              help="The clinic the events belong to (a registered, active clinic).")
def publish(source: IO[bytes], clinic_id: str) -> None:
    """Publish events from FILE or - (a JSON object, an array, or JSON lines)."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.publish_cli import clinic_problem, publish_stream

    _setup_logging()
    problem = clinic_problem(clinic_id)
    if problem is not None:
        _fail(f"--clinic: {problem}")
    sys.exit(publish_stream(source.read(), out=click.echo, clinic_id=clinic_id))


@main.command()
@click.argument("appointment_id")
@clinic_option
def status(appointment_id: str, clinic_id: str) -> None:
    """Show an appointment of a clinic: its state, meeting and who was told what."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.status import show_status

    sys.exit(show_status(appointment_id, clinic_id=clinic_id))


@main.command()
@click.option("--interval", type=float, default=None, help="Seconds between reconciler passes "
              "(default: TELEMED_SCHEDULER_INTERVAL_SECONDS, 15).")
@click.option("--once", is_flag=True, help="Run one pass and exit.")
def scheduler(interval: float | None, once: bool) -> None:
    """Run periodic jobs: the reconciler and the rest (one active instance)."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.scheduler import run_scheduler

    _setup_logging()
    sys.exit(run_scheduler(interval=interval or get_settings().scheduler_interval_seconds, once=once))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", type=int, default=None, help="Port (default: $PORT, else 8000).")
def web(host: str, port: int | None) -> None:
    """Serve the HTTP API (event ingress, OAuth, start links, admin)."""
    # lazy: telemed --help must not import the whole pipeline
    import uvicorn

    from telemed.bootstrap import web_services as build_web_services
    from telemed.web.app import create_app

    _setup_logging()
    port = port or int(os.environ.get("PORT", "8000"))
    app = create_app(build_web_services(get_settings()))
    uvicorn.run(app, host=host, port=port, log_config=None, proxy_headers=True)


@main.command("run")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface the web part binds.")
@click.option("--port", type=int, default=None, help="Web port (default: $PORT, else 8000).")
@click.option("--processes", "-p", type=int, default=1, show_default=True, help="Worker processes.")
@click.option("--threads", "-t", type=int, default=8, show_default=True, help="Threads per worker process.")
def run(host: str, port: int | None, processes: int, threads: int) -> None:
    """Run web, worker and scheduler together on one machine (embedded Redis if none is set)."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.run import run_all

    _setup_logging()
    sys.exit(run_all(get_settings(), host, port or int(os.environ.get("PORT", "8000")), processes, threads))


@main.command()
def check() -> None:
    """Check this deployment: Redis (and Sentinels), the database and its migrations, the
    clocks, a Zoom token grant and the SMTP login. Exit 1 if anything is wrong."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.bootstrap import database, redis_client
    from telemed.selfcheck import run_checks

    settings = get_settings()
    findings = run_checks(settings, redis_client(settings), database(settings))
    width = max(len(f.name) for f in findings)
    for finding in findings:
        mark = click.style("ok  ", fg="green") if finding.ok else click.style("FAIL", fg="red", bold=True)
        click.echo(f"{mark}  {finding.name.ljust(width)}  {finding.detail}")
    failed = [f.name for f in findings if not f.ok]
    click.echo(f"{len(failed)} problem(s): {', '.join(failed)}" if failed else "everything checked is fine")
    sys.exit(1 if failed else 0)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="heads", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.store.migrate import upgrade

    settings = get_settings()
    upgrade(settings.resolved_database_url, revision)
    click.echo(f"database schema at {revision}")


@main.command("zoom-sim", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def zoom_sim(ctx: click.Context) -> None:
    """Run the local Zoom simulator (arguments: see telemed zoom-sim --help)."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.zoom.simulator.cli import main as simulator_main

    sys.exit(simulator_main(list(ctx.args)))


@main.command()
@click.option("--only", default=None, metavar="NAME[,NAME]",
              help="Only these benchmarks: broker, latency-bound, zoom-limits, tokens, booking-latency, "
                   "recovery, memory (or their item numbers 1-7).")
@click.option("--scale", type=click.Choice(["small", "full"]), default="full", show_default=True,
              help="small: a quick check of the harness; full: the published figures.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("docs/benchmarks"), show_default=True,
              help="Where README.md, results.json and the PNG plots go.")
@click.option("--processes", type=int, default=None, help="Worker processes (default: CPU count).")
@click.option("--threads", type=int, default=None, help="Threads per worker process (default: 8).")
def bench(only: str | None, scale: str, out: Path, processes: int | None, threads: int | None) -> None:
    """Measure telemed against the baselines users would otherwise choose (needs telemed[bench]).

    Uses TELEMED_BENCH_REDIS_URL / TELEMED_BENCH_DATABASE_URL when set, else embedded Redis and SQLite."""
    # lazy: telemed --help must not import the whole pipeline
    from telemed.bench import run_bench_command

    sys.exit(run_bench_command(only=only, scale=scale, out=out, processes=processes, threads=threads,
                               echo=click.echo))


# Commands that belong to a part of the product live beside it; they attach here.
for _group in (keys, clinics, doctors, dlq, webhook):
    main.add_command(_group)

if __name__ == "__main__":
    main()
