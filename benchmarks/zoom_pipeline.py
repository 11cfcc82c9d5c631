"""3. Zoom limits through the pipeline: bookings against the simulator enforcing Zoom Pro.

N bookings (2,000 at full scale) spread evenly over 40 doctors (50 each at full scale,
under Zoom's 100 creates per host per day) are committed to the inbox and queued in one
burst; real ``telemed worker`` processes (the scale's processes × threads) turn them into
meetings and invitations while the simulator enforces Zoom Pro's limits: Medium 20/s
(create, list) and Light 30/s (get, update, delete) per account over sliding one-second
windows, and 100 creates/updates per host per UTC day. Two arms, each on a fresh
deployment (database, Redis namespace, simulator):

- *telemed*: the workers' production pacing settings (``zoom.ratelimit``: the plan's
  numbers × ``SAFETY``, shared through Redis by every process);
- *unpaced*: the pacer lifted (what items 1, 2, 5 and 6 run with), so the retry policy
  alone deals with the 429s (a jittered 1–3 s pause, then the message runs again).

Everything is read from the simulator's own request log: successful creates per second
between 10 % and 90 % of them (and first to last), the busiest one-second window of
creates, the least time any 21 consecutive creates took (Zoom's window is one second),
429 answers per endpoint (per-second and daily), and bookings fully done (the
meeting made and both invitations delivered) when the arm finished or stalled.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from telemed.benchmarks import zoom_log
from telemed.benchmarks.context import Context
from telemed.benchmarks.procs import Proc
from telemed.benchmarks.stack import Stack, sample_bookings, start_simulator
from telemed.zoom.simulator.limits import MEDIUM, PRO_PLAN

DOCTORS = 40
DAILY_CAP = 100  # Zoom's creates/updates per host per UTC day
ARMS = (("telemed", True), ("unpaced", False))
STALL_SECONDS = 20.0  # no booking finished for this long: the rest is stuck (dead-lettered)
LOG_ENTRIES_PER_BOOKING = 20  # room in the simulator's request log; a full log fails the arm


@dataclass
class PipelineRow:
    arm: str
    pacing: str
    processes: int
    threads: int
    bookings: int
    doctors: int
    per_doctor: int
    limit_per_second: float
    done: int
    created: int
    creates_per_second: float  # between 10 % and 90 % of the creates
    creates_per_second_first_to_last: float
    share_of_limit: float
    busiest_second: int
    span_of_closest_21_creates_ms: float | None  # Zoom's window: 1,000 ms; less is a 429
    answers_429: int
    answers_429_by_endpoint: str
    daily_429: int
    seconds: float  # from the burst to the last booking done (or to the stall)


def measure_pipeline(ctx: Context) -> list[PipelineRow]:
    """Both arms at the context's scale, telemed first."""
    return [_arm(ctx, name, paced) for name, paced in ARMS]


def per_doctor(bookings: int, doctors: int = DOCTORS) -> int:
    """Bookings per doctor that spread ``bookings`` over ``doctors``; refuses a spread
    that would reach the daily cap (the run would then measure the quota, not the pace)."""
    spread = max(1, math.ceil(bookings / doctors))
    if spread >= DAILY_CAP:
        raise ValueError(f"{bookings} bookings over {doctors} doctors reach Zoom's {DAILY_CAP} per host per day")
    return spread


def _arm(ctx: Context, name: str, paced: bool) -> PipelineRow:
    scale, total = ctx.scale, ctx.scale.zoom_bookings
    spread, prefix = per_doctor(total), f"ZL{name[0].upper()}-"
    sim = start_simulator(rate_limits=PRO_PLAN, daily_limit=DAILY_CAP,
                          request_log_limit=LOG_ENTRIES_PER_BOOKING * total)
    stack = Stack(ctx.services, f"zoom-{name}", sim, paced=paced)
    try:
        workers = stack.start_workers(scale.processes, scale.threads)
        ctx.step(f"3 zoom limits, {name}: {total} bookings over {DOCTORS} doctors ({spread} each)")
        held = stack.preload(sample_bookings(prefix, total, spread))
        started = stack.release(held)
        last = _wait_done(stack, prefix, total, workers)
        done = stack.bookings_done(prefix)
        log, counters = sim.requests(), dict(sim.stats()["counters"])
    finally:
        stack.stop()
        sim.stop()
    if len(log) >= LOG_ENTRIES_PER_BOOKING * total:
        raise RuntimeError("the simulator's request log filled up: the oldest requests are missing")
    return _row(name, paced, ctx, spread, done, last - started, log, counters)


def _wait_done(stack: Stack, prefix: str, total: int, workers: Proc) -> float:
    """Poll until every booking is done, or none finished for ``STALL_SECONDS`` (the
    unpaced arm can exhaust a message's retries on 429s; nothing re-queues it here, as the
    reconciler is not running); returns the monotonic time of the last progress."""
    deadline = time.monotonic() + 120 + 3 * total / PRO_PLAN[MEDIUM]
    seen, changed = -1, time.monotonic()
    while True:
        done, now = stack.bookings_done(prefix), time.monotonic()
        if done != seen:
            seen, changed = done, now
        if done >= total or now - changed > STALL_SECONDS or now > deadline:
            return changed
        workers.check_alive()
        time.sleep(0.25)


def _row(name: str, paced: bool, ctx: Context, spread: int, done: int, seconds: float,
         log: list[dict[str, Any]], counters: dict[str, int]) -> PipelineRow:
    limit = PRO_PLAN[MEDIUM]
    created = zoom_log.created_times(log)
    steady = zoom_log.rate_between(created) or 0.0
    refused = zoom_log.answers_429(log)
    return PipelineRow(
        arm=name, pacing="production settings" if paced else "lifted", processes=ctx.scale.processes,
        threads=ctx.scale.threads, bookings=ctx.scale.zoom_bookings, doctors=DOCTORS, per_doctor=spread,
        limit_per_second=limit, done=done, created=len(created), creates_per_second=round(steady, 2),
        creates_per_second_first_to_last=round(zoom_log.rate_between(created, 0.0, 1.0) or 0.0, 2),
        share_of_limit=round(steady / limit, 3), busiest_second=zoom_log.busiest_second(created),
        span_of_closest_21_creates_ms=zoom_log.shortest_span_ms(zoom_log.created_arrivals(log), int(limit) + 1),
        answers_429=sum(refused.values()),
        answers_429_by_endpoint=", ".join(f"{kind}: {n}" for kind, n in refused.items()) or "none",
        daily_429=counters.get("rate_limited.daily", 0), seconds=round(seconds, 1))
