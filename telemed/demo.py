"""``telemed demo``: the whole pipeline on one machine with nothing installed.

An embedded Redis-protocol server, SQLite in the demo folder, the local Zoom simulator,
a real worker process and sample bookings with reschedules and cancels; then a table
of what happened. Nothing secret is printed: links and passcodes stay in the .eml files.

Two clinics share the deployment: the default one, configured from the environment as a
single-clinic deployment is, and a second one registered in the store with a Zoom
account, sender and ingress key of its own. Their booking systems use the same
appointment and doctor ids; each clinic's meetings are made in its own Zoom account and
its mail goes out under its own sender.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

from cryptography.fernet import Fernet
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from telemed import bootstrap
from telemed.foundation.tenancy import DEFAULT_CLINIC, clinic_of, external_id, scoped
from telemed.logging import configure_logging
from telemed.samples import sample_events
from telemed.settings import get_settings, reset_settings_cache
from telemed.store import appointments, clinics, inbox, ingress_keys, operations
from telemed.store.migrate import upgrade
from telemed.store.status_view import appointment_status
from telemed.workers.queue.embedded_redis import EmbeddedRedisServer
from telemed.zoom.simulator import ZoomSimulator

DEMO_ACCOUNT = {"account_id": "demo-account", "client_id": "demo-client", "client_secret": "demo-secret"}
# The second clinic: its own Zoom account in the simulator, its own sender.
SECOND_CLINIC = "riverside"
SECOND_NAME = "Riverside Health"
SECOND_ACCOUNT = {"account_id": "riverside-account", "client_id": "riverside-client",
                  "client_secret": "riverside-secret"}
SECOND_SENDER = "appointments@riverside.example"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_environment(directory: Path, redis_url: str, sim: ZoomSimulator) -> dict[str, str]:
    return {
        "TELEMED_ENV": "development",
        "TELEMED_DATA_DIR": str(directory),
        "TELEMED_REDIS_URL": redis_url,
        "TELEMED_REDIS_NAMESPACE": "telemed-demo",
        "TELEMED_DATABASE_URL": f"sqlite:///{(directory / 'telemed.db').resolve()}",
        "TELEMED_SECRET_KEYS": Fernet.generate_key().decode(),
        "TELEMED_ZOOM_API_URL": sim.api_url,
        "TELEMED_ZOOM_OAUTH_URL": sim.oauth_url,
        "TELEMED_ZOOM_ACCOUNT_ID": DEMO_ACCOUNT["account_id"],
        "TELEMED_ZOOM_CLIENT_ID": DEMO_ACCOUNT["client_id"],
        "TELEMED_ZOOM_CLIENT_SECRET": DEMO_ACCOUNT["client_secret"],
        "TELEMED_MAIL_DIR": str((directory / "mail").resolve()),
        "TELEMED_SMTP_URL": "",
        "TELEMED_LOG_FORMAT": "json",
    }


def run_demo(bookings: int, directory: Path, processes: int = 1, threads: int = 8) -> int:
    console = Console()
    started = time.monotonic()
    if directory.exists():
        shutil.rmtree(directory)
    (directory / "logs").mkdir(parents=True)
    redis_server = EmbeddedRedisServer.start(port=_free_port())
    sim = ZoomSimulator(
        client_id=DEMO_ACCOUNT["client_id"], client_secret=DEMO_ACCOUNT["client_secret"],
        account_id=DEMO_ACCOUNT["account_id"],
    ).start()
    env = demo_environment(directory, redis_server.url, sim)
    os.environ.update(env)
    reset_settings_cache()
    worker: subprocess.Popen[bytes] | None = None
    closing = contextlib.ExitStack()
    try:
        console.print(f"[bold]telemed demo[/bold]: {bookings} bookings, embedded Redis at {redis_server.url}, "
                      f"Zoom simulator at {sim.api_url}")
        upgrade(env["TELEMED_DATABASE_URL"])
        second_bookings = max(1, bookings * 2 // 5)
        _register_second_clinic(sim)
        with open(directory / "logs" / "worker.log", "wb") as log_file:  # the child keeps its own copy
            worker = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
                [sys.executable, "-m", "telemed", "worker", "--processes", str(processes), "--threads", str(threads)],
                env={**os.environ, **env}, stdout=log_file, stderr=subprocess.STDOUT,
            )

        demo_log = closing.enter_context(open(directory / "logs" / "demo.log", "w"))  # noqa: SIM115
        configure_logging(format="json", level="WARNING", stream=demo_log)
        publisher = bootstrap.publisher(get_settings())
        # The same appointment and doctor ids in both clinics: they are two clinics' own.
        batches = [(DEFAULT_CLINIC, sample_events(bookings)),
                   (SECOND_CLINIC, sample_events(second_bookings, seed=11, clinic=("RH", SECOND_NAME)))]
        outcomes: dict[str, int] = {"accepted": 0, "duplicate": 0}
        appointment_keys: list[str] = []
        for clinic_id, samples in batches:
            for event in samples.events:
                outcomes[publisher.publish(event, clinic_id).status] += 1
            appointment_keys += sorted({scoped(clinic_id, e["appointment"]["id"]) for e in samples.events})
        finished = _wait_for_pipeline(console, publisher.database, len(appointment_keys), worker, timeout=120)
        _print_results(console, publisher.database, appointment_keys, sim)
        elapsed = time.monotonic() - started
        console.print(
            f"events: {outcomes['accepted']} accepted, {outcomes['duplicate']} duplicate; "
            f"Zoom meetings created: {sum(1 for m in sim.meetings() if m.get('created'))}, "
            f"live now: {sum(1 for m in sim.meetings() if not m.get('deleted'))}"
        )
        _print_clinics(console, sim, Path(env["TELEMED_MAIL_DIR"]))
        console.print(f"mail written to [bold]{env['TELEMED_MAIL_DIR']}[/bold] "
                      f"({len(list(Path(env['TELEMED_MAIL_DIR']).glob('*.eml')))} .eml files); "
                      f"logs in {directory / 'logs'}")
        console.print(f"finished in {elapsed:.1f} s")
        return 0 if finished else 1
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
        sim.stop()
        redis_server.stop()
        closing.close()


def _register_second_clinic(sim: ZoomSimulator) -> None:
    """The second clinic, as `telemed clinics add` would register it, with its own Zoom account."""
    sim.add_account(SECOND_ACCOUNT["account_id"], SECOND_ACCOUNT["client_id"], SECOND_ACCOUNT["client_secret"])
    database = bootstrap.database(get_settings())
    try:
        with database.session() as session:
            clinics.add_clinic(
                session, SECOND_CLINIC, SECOND_NAME, zoom_account_id=SECOND_ACCOUNT["account_id"],
                zoom_client_id=SECOND_ACCOUNT["client_id"], zoom_client_secret=SECOND_ACCOUNT["client_secret"],
                mail_from=SECOND_SENDER, mail_display_name=SECOND_NAME,
            )
            # Its booking system would sign events with this key (X-Telemed-Key-Id); the demo
            # publishes in process, so the secret is not used and not shown.
            ingress_keys.add_key(session, SECOND_CLINIC)
    finally:
        database.dispose()


def _print_clinics(console: Console, sim: ZoomSimulator, mail_dir: Path) -> None:
    """Per clinic: the Zoom account its meetings were made in, and the sender of its mail."""
    senders: dict[str, int] = {}
    for eml in mail_dir.glob("*.eml"):
        with open(eml, "rb") as handle:
            sender = str(BytesParser(policy=default).parse(handle, headersonly=True)["From"])
        senders[sender] = senders.get(sender, 0) + 1
    table = Table(title="clinics", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("clinic", "Zoom account", "meetings", "mails"):
        table.add_column(column, no_wrap=True)
    table.add_column("sent as", overflow="fold")
    for clinic_id, account, marker in ((DEFAULT_CLINIC, DEMO_ACCOUNT["account_id"], "telemed"),
                                       (SECOND_CLINIC, SECOND_ACCOUNT["account_id"], SECOND_SENDER)):
        made = sum(1 for m in sim.meetings(account=account) if m.get("created"))
        sent = {s: n for s, n in senders.items() if marker in s}
        for sender, count in sorted(sent.items()) or [("-", 0)]:
            table.add_row(clinic_id, account, str(made), str(count), sender)
    console.print(table)


def _progress_counts(database, total_appointments: int) -> tuple[int, bool]:  # type: ignore[no-untyped-def]
    with database.session() as session:
        done = appointments.count_synced_appointments(session)
        pending_events = inbox.count_pending_events(session)
        pending_mail = operations.count_outbox_pending(session)
    return done, pending_events == 0 and pending_mail == 0


def _wait_for_pipeline(console: Console, database, total: int, worker, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as progress:
        task = progress.add_task("appointments synced", total=total)
        while time.monotonic() < deadline:
            done, quiet = _progress_counts(database, total)
            progress.update(task, completed=done)
            if done >= total and quiet:
                return True
            if worker.poll() is not None:
                console.print("[red]the worker exited early; see its log[/red]")
                return False
            time.sleep(0.2)
    console.print("[red]timed out waiting for the pipeline[/red]")
    return False


def _print_results(console: Console, database, appointment_ids: list[str], sim: ZoomSimulator) -> None:  # type: ignore[no-untyped-def]
    table = Table(title="appointments", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("clinic", no_wrap=True)
    table.add_column("appointment", no_wrap=True)
    table.add_column("v", justify="right")
    table.add_column("state", no_wrap=True)
    table.add_column("zoom meeting", no_wrap=True)
    table.add_column("patient joins", no_wrap=True)
    table.add_column("who was told what")
    with database.session() as session:
        for appointment_id in appointment_ids:
            s = appointment_status(session, appointment_id)
            if s is None:
                continue
            told: dict[str, list[str]] = {}
            for n in s.notices:
                told.setdefault(n.role, []).append(n.kind if n.status == "sent" else f"[dim]{n.kind} ({n.status})[/dim]")
            meeting = "-" if s.zoom_meeting_id is None else (
                str(s.zoom_meeting_id) if s.meeting_live else f"[dim]{s.zoom_meeting_id} deleted[/dim]"
            )
            who = "; ".join(f"{role}: {', '.join(kinds)}" for role, kinds in told.items()) or "-"
            joins = {"registered": "own link", "fallback": "[yellow]passcode link (fallback)[/yellow]",
                     "off": "passcode link"}.get(s.patient_join or "", "-")
            table.add_row(clinic_of(appointment_id), f"{external_id(s.id)} ({external_id(s.doctor_id)})", str(s.version), s.state, meeting, joins, who)
    console.print(table)
    registrants = [r for m in sim.meetings(include_deleted=False) for r in m.get("registrants", [])
                   if r.get("status") == "approved"]
    if registrants:
        # The shape only: the registrant's key (tk=) is a credential, so it stays in the .eml files.
        shape = registrants[0]["join_url"].split("?", 1)[0] + "?tk=…"
        console.print(f"patients registered in Zoom: {len(registrants)}, each with a join link of their own "
                      f"({shape}); the patients' mails carry only that link")
