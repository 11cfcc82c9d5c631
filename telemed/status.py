"""``telemed status APPOINTMENT_ID [--clinic ID]``: one appointment of one clinic, in its own ids."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from telemed.bootstrap import database as build_database
from telemed.clinic_scope import key_in, require_clinic
from telemed.foundation.tenancy import DEFAULT_CLINIC, external_id
from telemed.settings import get_settings
from telemed.store.status_view import appointment_status

_JOIN = {
    "registered": "registered (their own Zoom link)",
    "fallback": "fallback: passcode link (the host cannot use Zoom registration)",
    "off": "passcode link",
    "open": "registration pending",
}


def show_status(appointment_id: str, console: Console | None = None, clinic_id: str = DEFAULT_CLINIC) -> int:
    console = console or Console()
    database = build_database(get_settings())
    require_clinic(database, clinic_id)
    key = key_in(clinic_id, appointment_id)
    status = None
    if key is not None:
        with database.session() as session:
            status = appointment_status(session, key)
    if status is None or status.clinic_id != clinic_id:  # another clinic's is not found either
        console.print(f"[red]no appointment {appointment_id!r}[/red]")
        return 1
    table = Table(show_header=False, title=f"appointment {external_id(status.id)}")
    table.add_row("version", str(status.version))
    table.add_row("desired", status.desired)
    table.add_row("state", status.state)
    table.add_row("doctor", external_id(status.doctor_id))
    table.add_row("starts (UTC)", status.start_time.isoformat() if status.start_time else "-")
    meeting = "-" if status.zoom_meeting_id is None else (
        f"{status.zoom_meeting_id} ({'live' if status.meeting_live else 'deleted'})"
    )
    table.add_row("zoom meeting", meeting)
    table.add_row("patient joins", _JOIN.get(status.patient_join or "", "-"))
    table.add_row("notifications", "\n".join(f"{n.role}:{n.kind}:{n.status}" for n in status.notices) or "-")
    if status.attention_reason:
        table.add_row("attention", status.attention_reason)
    console.print(table)
    return 0
