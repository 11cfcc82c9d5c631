"""2. Latency-bound efficiency: with Zoom answering in 100 ms, how close the workers get
to what their threads allow.

Bookings are committed to the inbox first and queued in one burst, so the workers see a
full queue. The ceiling is processes × threads / (Zoom calls per booking × 100 ms): every
thread always waiting on Zoom and nothing else. The Zoom calls per booking are counted
from the simulator's request log (token requests included), not assumed. Achieved is
bookings/s between 10 % and 90 % of completions; done means the meeting exists and both
invitations are delivered.
"""

from __future__ import annotations

import os

from benchmarks import cpu_groups, plots
from benchmarks.context import Context
from benchmarks.procs import CpuMeter, machine_busy_seconds
from benchmarks.report import Row, Section, at_least, fmt, table
from benchmarks.stack import Stack, sample_bookings, start_simulator
from benchmarks.timeline import Timeline, follow

ITEM, KEY, TITLE = 2, "latency-bound", "Latency-bound efficiency"
LATENCY_S = 0.1
TARGET = at_least(0.9)


def run(ctx: Context) -> Section:
    section = Section(ITEM, KEY, TITLE, method=__doc__.split("\n\n", 1)[1])  # type: ignore[union-attr]
    scale = ctx.scale
    total = scale.latency_bookings
    sim = start_simulator(LATENCY_S)
    stack = Stack(ctx.services, "latency", sim)
    try:
        workers = stack.start_workers(scale.processes, scale.threads)
        ctx.step(f"2 latency-bound: {total} bookings, simulator latency {LATENCY_S * 1000:.0f} ms")
        held = stack.preload(sample_bookings("LB-", total))
        before = len(sim.requests())
        meter = CpuMeter(cpu_groups.groups(ctx.services, workers=workers))
        meter.start()
        busy = machine_busy_seconds()
        timeline = Timeline(total=total)
        started = stack.release(held)
        finished = follow(timeline, lambda: stack.bookings_done("LB-"), timeout=max(120, total),
                          interval=0.1, check=workers.check_alive)
        cpu = meter.stop()
        busy = (machine_busy_seconds() - busy) / ((finished - started) * (os.cpu_count() or 1))
        requests = sim.requests()[before:]
    finally:
        stack.stop()
        sim.stop()
    calls = len(requests) / total
    by_kind: dict[str, int] = {}
    for request in requests:
        kind = f"{request['method']} {_route(request['path'])}"
        by_kind[kind] = by_kind.get(kind, 0) + 1
    ceiling = scale.processes * scale.threads / (calls * LATENCY_S)
    achieved = timeline.steady_rate() or total / (finished - started)
    section.rows = [Row(ITEM, "bookings/s at 100 ms Zoom latency", f"{fmt(achieved)} bookings/s",
                        "ceiling P × T / (calls × 100 ms)",
                        f"{fmt(ceiling)} bookings/s ({scale.processes} × {scale.threads} / ({calls:.3g} × 0.1 s))",
                        value=achieved, ratio=achieved / ceiling, target=TARGET)]
    section.details.append(table(["run", "figure"], [
        ["processes × threads", f"{scale.processes} × {scale.threads}"],
        ["bookings", str(total)],
        ["Zoom calls per booking (request log)", f"{calls:.3g}: " + ", ".join(
            f"{kind} {n / total:.2g}" for kind, n in sorted(by_kind.items()))],
        ["bookings/s, 10 %–90 % of completions", fmt(achieved)],
        ["bookings/s, burst to last mail", fmt(total / (finished - started))],
        ["worker CPU per booking", f"{1000 * cpu['workers'] / total:.1f} ms"],
        ["worker CPU use", f"{100 * cpu['workers'] / (finished - started):.0f} % of one CPU"],
        ["machine CPU busy during the run (all processes, all CPUs)",
         f"{100 * busy:.0f} %" + (": CPU-bound, so the ceiling cannot be reached here" if busy > 0.85 else "")],
    ]))
    section.data = {"bookings": total, "latency_s": LATENCY_S, "calls_per_booking": calls, "calls": by_kind,
                    "achieved": achieved, "ceiling": ceiling, "ratio": achieved / ceiling, "machine_busy": busy,
                    "cpu_ms_per_booking": {k: 1000 * v / total for k, v in cpu.items()}}
    ctx.settings["2 latency-bound"] = (f"{scale.processes} processes × {scale.threads} threads, "
                                       f"simulator latency {LATENCY_S * 1000:.0f} ms, {total} bookings")
    plot = plots.bars(ctx.out / "latency-bound.png", "Bookings per second with 100 ms Zoom latency",
                      ["achieved", "ceiling"], [achieved, ceiling], "bookings/s", line=0.9 * ceiling,
                      line_label="target: 0.9 × ceiling")
    if plot:
        section.plots.append(plot)
    return section


def _route(path: str) -> str:
    """``/v2/users/x/meetings`` → ``/users/{id}/meetings``: request kinds without ids."""
    parts = [p for p in path.split("/") if p]
    if parts and parts[0] == "v2":
        parts = parts[1:]
    named = [p if (i % 2 == 0 or p in {"meetings", "token"}) else "{id}" for i, p in enumerate(parts)]
    return "/" + "/".join(named)
