"""9. Scale of tenancy: 200 clinics at once, each under its own Zoom account's limits, cost
little throughput.

Side by side, each on a fresh deployment with the same workers: 200 clinics, each with
its own Zoom account in the simulator (Zoom Pro limits per account, production pacing,
the default clinic gate), 20 bookings each; and one clinic with the same 4,000 bookings
and Zoom's limits lifted, the most this machine's workers do for a single clinic (paced
by one account's 20 creates a second instead, it would measure that limit, not the
pipeline). The bookings are committed to the inbox first, interleaved across the
clinics, and queued in one burst. Figures: bookings done per second between 10 % and
90 % (done: the patient invited), the tenancy arm's divided by the single clinic's
(target at least 0.8); and, from the simulator's request log, each Zoom account's
busiest one-second window of meeting creates and its 429 answers (target: within its
limit, no 429 at all). (`benchmarks/tenancy_scale.py`.)
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from telemed.benchmarks.bookings import base_time
from telemed.benchmarks.context import Context
from telemed.benchmarks.report import Row, Section, Target, at_least, fmt, table
from telemed.benchmarks.stack import Stack, start_simulator
from telemed.benchmarks.tenancy import (
    SHARED_ACCOUNT,
    clinic_booking,
    clinic_ids,
    clinic_of_create,
    give_own_accounts,
    invited_total,
    preload,
    profiles,
    register_on_shared_account,
)
from telemed.benchmarks.timeline import Timeline, follow
from telemed.benchmarks.zoom_log import answers_429, busiest_second, is_create
from telemed.foundation.settings import Settings
from telemed.zoom.simulator.limits import MEDIUM, PRO_PLAN

ITEM, KEY, TITLE = 9, "tenancy", "Scale of tenancy"
THROUGHPUT_TARGET = at_least(0.8)
LIMIT_TARGET = Target("≤ the plan's 20/s per account, 0 × 429", "value", lambda v: v == 0)


def run(ctx: Context) -> Section:
    section = Section(ITEM, KEY, TITLE, method=__doc__.split("\n\n", 1)[1])  # type: ignore[union-attr]
    scale = ctx.scale
    clinics = clinic_ids(scale.tenancy_clinics)
    total = len(clinics) * scale.tenancy_per_clinic
    base = base_time()
    ctx.step(f"9 tenancy: one clinic, {total} bookings, Zoom's limits lifted")
    solo = _arm(ctx, "tenancy-one", [("solo", n) for n in range(total)], base, paced=False)
    ctx.step(f"9 tenancy: {len(clinics)} clinics × {scale.tenancy_per_clinic} bookings, Zoom Pro per account")
    many = _arm(ctx, "tenancy-many", [(c, n) for n in range(scale.tenancy_per_clinic) for c in clinics], base,
                paced=True, clinics=clinics)

    ratio = many["rate"] / solo["rate"] if solo["rate"] else float("nan")
    section.rows.append(Row(
        ITEM, f"bookings/s, {len(clinics)} clinics × {scale.tenancy_per_clinic} "
              f"({'each its own Zoom account' if many['own'] else 'sharing one Zoom account'})",
        f"{fmt(many['rate'])} bookings/s", "one clinic, same bookings, Zoom's limits lifted",
        f"{fmt(solo['rate'])} bookings/s", value=many["rate"], ratio=ratio, target=THROUGHPUT_TARGET))
    per_account = many["accounts"]
    busiest = max((a["busiest"] for a in per_account.values()), default=0)
    refused = sum(a["refused"] for a in per_account.values())
    over = sum(1 for a in per_account.values() if a["busiest"] > PRO_PLAN[MEDIUM])
    section.rows.append(Row(
        ITEM, "meeting creates per Zoom account: busiest second, 429 answers",
        f"busiest {busiest} creates/s over {len(per_account)} account(s); {refused} × 429",
        "Zoom Pro's limit per account", f"{PRO_PLAN[MEDIUM]:.0f} creates/s", value=float(over + refused),
        ratio_text=f"{over} over, {refused} × 429", target=LIMIT_TARGET))
    section.details.append(table(["arm", "bookings", "Zoom accounts", "bookings/s (10 %–90 %)", "first to last",
                                  "creates/s, busiest account's busiest second", "429 answers"], [
        [f"one clinic ({solo['gate']})", str(total), "one, limits lifted", fmt(solo["rate"]), fmt(solo["overall"]),
         "—", _refusals(solo["refused"])],
        [f"{len(clinics)} clinics ({many['gate']})", str(total),
         f"{len(per_account)} ({'one per clinic' if many['own'] else 'shared'}), Zoom Pro each", fmt(many["rate"]),
         fmt(many["overall"]), str(busiest), _refusals(many["refused"])],
    ]))
    if not many["own"]:
        section.details.append(f"Note: {SHARED_ACCOUNT}: the {len(clinics)} clinics shared one account's 20 "
                               "creates a second, so the tenancy arm measured that limit, not the pipeline.")
    section.data = {"solo": solo, "many": {k: v for k, v in many.items() if k != "accounts"}, "ratio": ratio,
                    "busiest": busiest, "refused": refused, "accounts": len(per_account)}
    ctx.settings["9 tenancy"] = (f"{len(clinics)} clinics × {scale.tenancy_per_clinic} bookings vs one clinic × "
                                 f"{total}; {scale.processes} × {scale.threads} workers; simulator latency 0 ms")
    return section


def _arm(ctx: Context, name: str, bookings: list[tuple[str, int]], base: Any, *, paced: bool,
         clinics: list[str] | None = None) -> dict[str, Any]:
    scale = ctx.scale
    limits = PRO_PLAN if paced else None
    sim = start_simulator(0.0, rate_limits=limits, request_log_limit=8 * len(bookings) + 2000)
    in_flight = int(Settings.model_fields["clinic_in_flight"].default)
    stack = Stack(ctx.services, name, sim, paced=paced, settings={"TELEMED_CLINIC_IN_FLIGHT": str(in_flight)})
    try:
        own = give_own_accounts(stack, sim, profiles(clinics)) if clinics else False
        if not clinics:
            register_on_shared_account(stack, sorted({clinic for clinic, _ in bookings}))
        workers = stack.start_workers(scale.processes, scale.threads)
        held = preload(stack, ((clinic, clinic_booking(clinic, "T", n, base)) for clinic, n in bookings))
        timeline = Timeline(total=len(bookings))
        started = stack.release(held)
        finished = follow(timeline, lambda: invited_total(stack), timeout=max(180, len(bookings)), interval=0.2,
                          check=workers.check_alive)
        log = sim.requests()
    finally:
        stack.stop()
        sim.stop()
    accounts: dict[str, dict[str, Any]] = defaultdict(lambda: {"arrivals": [], "refused": 0})
    for entry in log:
        if not is_create(entry):
            continue
        clinic = clinic_of_create(entry["path"]) or "?"
        account = accounts[clinic if own else "shared"]
        if entry["status"] == 201:
            account["arrivals"].append(float(entry.get("arrived", entry["at"])))
        elif entry["status"] == 429:
            account["refused"] += 1
    per_account = {k: {"busiest": busiest_second(sorted(v["arrivals"])), "refused": v["refused"],
                       "creates": len(v["arrivals"])} for k, v in accounts.items()}
    return {"rate": timeline.steady_rate() or len(bookings) / (finished - started),
            "overall": len(bookings) / (finished - started), "own": own, "accounts": per_account,
            "refused": answers_429(log), "gate": f"gate {in_flight} per clinic", "seconds": finished - started}


def _refusals(refused: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in refused.items()) or "none"
