"""The summary tables of a crash run (rich): what was done to the system, and each claim
with what was expected, what was found and whether it held."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console
from rich.table import Table

from tests.support.chaos.checks import Verdict


def tables(verdict: Verdict, title: str) -> list[Table]:
    run = Table(title=f"{title}: what was done", show_header=True, header_style="bold")
    run.add_column("what")
    run.add_column("count", justify="right")
    for name, value in verdict.numbers.items():
        run.add_row(name.replace("_", " "), _fmt(value))
    claims = Table(title=f"{title}: what held", show_header=True, header_style="bold")
    claims.add_column("claim")
    claims.add_column("expected")
    claims.add_column("observed")
    claims.add_column("", justify="center")
    for check in verdict.checks:
        claims.add_row(check.name, check.expected, check.observed,
                       "[green]ok[/green]" if check.ok else f"[red]FAIL ({len(check.problems)})[/red]")
    return [run, claims]


def render(verdict: Verdict, title: str, width: int = 120) -> str:
    """The tables as plain text (for a file, a log, or a failing assertion)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None)
    for table in tables(verdict, title):
        console.print(table)
    return buffer.getvalue()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
    return str(value)
