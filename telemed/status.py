"""``telemed status APPOINTMENT_ID``."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from telemed.bootstrap import database as build_database
from telemed.settings import get_settings
from telemed.views import summarize


def show_status(appointment_id: str, console: Console | None = None) -> int:
    console = console or Console()
    database = build_database(get_settings())
    with database.session() as session:
        summary = summarize(session, appointment_id)
    if summary is None:
        console.print(f"[red]no appointment {appointment_id!r}[/red]")
        return 1
    table = Table(show_header=False, title=f"appointment {summary.id}")
    table.add_row("version", str(summary.version))
    table.add_row("desired", summary.desired)
    table.add_row("state", summary.state)
    table.add_row("doctor", summary.doctor_id)
    table.add_row("starts (UTC)", summary.start_time)
    meeting = "-" if summary.zoom_meeting_id is None else (
        f"{summary.zoom_meeting_id} ({'live' if summary.meeting_live else 'deleted'})"
    )
    table.add_row("zoom meeting", meeting)
    table.add_row("notifications", "\n".join(summary.notices) or "-")
    if summary.attention_reason:
        table.add_row("attention", summary.attention_reason)
    console.print(table)
    return 0
