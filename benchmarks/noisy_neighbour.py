"""8. Noisy neighbour: one clinic's bulk import does not hold back another clinic.

One deployment (`telemed worker`, production pacing and the default clinic gate), the
Zoom simulator enforcing Zoom Pro's limits and answering in 100 ms. Clinic B books one
appointment a second; each booking's latency is from its publish to its patient's
invitation being sent. First with clinic A idle (the baseline), then while A imports
5,000 bookings (committed and queued as fast as they are accepted: 5,000 messages in
the queues at once, draining at A's Zoom limit of about 19 creates a second, for minutes).
The figure is B's p99 while A imports divided by B's p99 with A idle; the target, at most
2. A's backlog must outlast B's window, and the table says how much of it drained.
(`benchmarks/noisy_neighbour.py`; the mechanisms: docs/architecture.md, "Fairness between
clinics".)
"""

from __future__ import annotations

import time
from typing import Any

from telemed.benchmarks.bookings import base_time
from telemed.benchmarks.context import Context
from telemed.benchmarks.loadgen import percentile
from telemed.benchmarks.report import Row, Section, Target, fmt, table
from telemed.benchmarks.stack import Stack, start_simulator
from telemed.benchmarks.tenancy import (
    SHARED_ACCOUNT,
    book_every,
    clinic_booking,
    deferrals,
    done_count,
    give_own_accounts,
    latencies,
    profiles,
)
from telemed.benchmarks.zoom_log import answers_429
from telemed.foundation.settings import Settings
from telemed.zoom.simulator.limits import PRO_PLAN

ITEM, KEY, TITLE = 8, "noisy-neighbour", "Noisy neighbour"
LATENCY_S = 0.1
B_EVERY_S = 1.0
A, B = "alpha", "beta"
TARGET = Target("≤ 2", "ratio", lambda v: v <= 2)


def run(ctx: Context) -> Section:
    section = Section(ITEM, KEY, TITLE, method=__doc__.split("\n\n", 1)[1])  # type: ignore[union-attr]
    scale = ctx.scale
    in_flight = int(Settings.model_fields["clinic_in_flight"].default)
    sim = start_simulator(LATENCY_S, rate_limits=PRO_PLAN, request_log_limit=10 * scale.noisy_a_bookings + 1000)
    stack = Stack(ctx.services, "noisy", sim, paced=True, settings={"TELEMED_CLINIC_IN_FLIGHT": str(in_flight)})
    try:
        own_accounts = give_own_accounts(stack, sim, profiles([A, B]))
        workers = stack.start_workers(scale.processes, scale.threads)
        base = base_time()
        latencies(stack, book_every(stack, B, "BW", 1, B_EVERY_S, base), timeout=120)  # connections, tokens
        ctx.step(f"8 noisy neighbour: B books {scale.noisy_b_idle}, one a second, A idle")
        idle = latencies(stack, book_every(stack, B, "BI", scale.noisy_b_idle, B_EVERY_S, base),
                         timeout=60 + 10 * scale.noisy_b_idle)
        ctx.step(f"8 noisy neighbour: A imports {scale.noisy_a_bookings}; B books {scale.noisy_b_loaded}")
        started = time.monotonic()
        for n in range(scale.noisy_a_bookings):
            stack.publish(clinic_booking(A, "A", n, base), A)
        import_seconds = time.monotonic() - started
        published = book_every(stack, B, "BL", scale.noisy_b_loaded, B_EVERY_S, base)
        loaded = latencies(stack, published, timeout=60 + 10 * scale.noisy_b_loaded)
        window = time.monotonic() - started
        a_done = done_count(stack, A, "A")
        workers.check_alive()
        refused = answers_429(sim.requests())
    finally:
        stack.stop()
        sim.stop()
    deferred = deferrals(stack)

    p99_idle, p99_loaded = percentile(idle, 99), percentile(loaded, 99)
    ratio = p99_loaded / p99_idle if p99_idle > 0 else float("nan")
    outlasted = a_done < scale.noisy_a_bookings
    section.rows.append(Row(
        ITEM, f"clinic B's booking-to-mail p99 while clinic A imports {scale.noisy_a_bookings:,} bookings",
        f"{fmt(p99_loaded)} s (p50 {fmt(percentile(loaded, 50))} s)", "B's p99 with A idle",
        f"{fmt(p99_idle)} s (p50 {fmt(percentile(idle, 50))} s)", value=p99_loaded, ratio=ratio, target=TARGET,
        passed=None if outlasted else False))
    notes = [] if own_accounts else [SHARED_ACCOUNT + ": B's creates waited in A's pacer too"]
    if not outlasted:
        notes.append("A's import drained before B's window ended: the figure does not show a backlog")
    section.details.append(table(["", "figure"], [
        ["worker processes × threads", f"{scale.processes} × {scale.threads}"],
        ["clinic gate (TELEMED_CLINIC_IN_FLIGHT)", str(in_flight)],
        ["Zoom accounts", "one per clinic" if own_accounts else "one, shared"],
        ["B's bookings with A idle / while A imports", f"{len(idle)} / {len(loaded)}, one a second"],
        ["B latency with A idle: p50, p99, max", _three(idle)],
        ["B latency while A imports: p50, p99, max", _three(loaded)],
        ["A's import: publishing it took", f"{import_seconds:.1f} s ({scale.noisy_a_bookings / import_seconds:.0f}/s)"],
        ["A's bookings done by the end of B's window", f"{a_done:,} of {scale.noisy_a_bookings:,} ({window:.0f} s)"],
        ["429 answers from the simulator", ", ".join(f"{k}: {v}" for k, v in refused.items()) or "none"],
        ["messages deferred on a busy Zoom pacer (whole run)", str(deferred)],
    ]))
    section.details.extend(f"Note: {n}." for n in notes)
    section.data = {"idle": idle, "loaded": loaded, "p99_idle": p99_idle, "p99_loaded": p99_loaded, "ratio": ratio,
                    "a_bookings": scale.noisy_a_bookings, "a_done": a_done, "own_accounts": own_accounts,
                    "in_flight": in_flight, "import_seconds": import_seconds, "rate_limited": refused,
                    "deferrals": deferred}
    ctx.settings["8 noisy neighbour"] = (f"A imports {scale.noisy_a_bookings:,}, B books {scale.noisy_b_idle} idle + "
                                         f"{scale.noisy_b_loaded} loaded one a second; simulator latency "
                                         f"{LATENCY_S * 1000:.0f} ms, Zoom Pro limits; "
                                         f"{'own Zoom accounts' if own_accounts else 'one shared Zoom account'}")
    return section


def _three(values: list[float]) -> str:
    summary: list[Any] = [percentile(values, 50), percentile(values, 99), max(values, default=float("nan"))]
    return ", ".join(f"{fmt(v)} s" for v in summary)
