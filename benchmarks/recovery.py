"""6. Recovery: from SIGKILL of a worker holding in-flight messages to those messages
running in another worker.

Two arms run side by side, each with its own namespace, database and simulator: telemed's
broker settings (heartbeat timeout 5 s, maintenance on 10 % of commands, a heartbeat
thread) and Dramatiq's defaults (60 s, 0.1 %, no heartbeat thread; the same actors,
started through ``benchmarks/default_broker.py``). In each, a *victim* worker process
(1 process × T threads) takes T bookings while the simulator holds every Zoom call, so
each thread is inside ``sync_meeting``, and an idle *survivor* process (paused with
SIGSTOP meanwhile, so it takes none) waits; the victim's whole process group gets SIGKILL,
the survivor continues, and the simulator answers at once again.

A message counts as running elsewhere once it has left both the dead worker's
acknowledgement set and the queue, i.e. a live worker fetched it (Dramatiq's Redis
layout: ``<ns>:__acks__.<worker>.<queue>``). Each arm waits up to its cap and reports
"> cap" otherwise. At full scale telemed's arm runs three times and the worst counts
against the target (the maintenance that hands messages over is random, so one lucky
kill proves little). Also shown: when those bookings were done (meeting made, both
invitations sent), which can take longer than the redelivery.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from dataclasses import dataclass, field

from sqlalchemy import func
from sqlmodel import col, select

from telemed.benchmarks import plots
from telemed.benchmarks.context import Context
from telemed.benchmarks.procs import Proc, wait_until
from telemed.benchmarks.report import Row, Section, below, table
from telemed.benchmarks.stack import Stack, sample_bookings, start_simulator
from telemed.store.models import ProvisioningIntent
from telemed.zoom.simulator import ZoomSimulator

ITEM, KEY, TITLE = 6, "recovery", "Recovery"
TARGET = below(10, on="value", unit=" s")
POLL_S = 0.05


@dataclass
class Arm:
    key: str
    name: str
    settings: str
    cap: float
    sim: ZoomSimulator
    stack: Stack
    command: list[str] | None
    victim: Proc | None = None
    held: dict[str, set[str]] = field(default_factory=dict)  # ack key -> message ids
    killed_at: float = 0.0
    recovered_after: float | None = None
    done_after: float | None = None
    locks_left: list[float] = field(default_factory=list)  # seconds to expiry of Redis locks at the kill


def run(ctx: Context) -> Section:
    section = Section(ITEM, KEY, TITLE, method=__doc__.split("\n\n", 1)[1])  # type: ignore[union-attr]
    scale = ctx.scale
    results: list[list[Arm]] = []
    for trial in range(1, scale.recovery_trials + 1):
        # Dramatiq's defaults take minutes: one capped trial is enough to show it.
        keys = ("ours", "default") if trial == 1 else ("ours",)
        ctx.step(f"6 recovery: trial {trial} of {scale.recovery_trials} ({', '.join(keys)})")
        results.append(_trial(ctx, keys, done_cap=scale.recovery_done_cap if trial == 1 else 0))
    _fill(section, ctx, results)
    return section


def _arm(ctx: Context, key: str) -> Arm:
    scale = ctx.scale
    sim = start_simulator(0.0)
    stack = Stack(ctx.services, f"recovery-{key}", sim)
    if key == "ours":
        return Arm(key, "telemed broker settings", "heartbeat timeout 5 s, maintenance 10 %, heartbeat thread",
                   scale.recovery_cap_ours, sim, stack, None)
    return Arm(key, "Dramatiq defaults", "heartbeat timeout 60 s, maintenance 0.1 %", scale.recovery_cap_default,
               sim, stack, [sys.executable, "-m", "dramatiq", "telemed.benchmarks.default_broker:broker", "--processes", "1",
                            "--threads", str(scale.threads)])


def _trial(ctx: Context, keys: tuple[str, ...], done_cap: float) -> list[Arm]:
    scale = ctx.scale
    threads = scale.threads
    hold = max(scale.recovery_cap_ours, scale.recovery_cap_default, done_cap) + 120
    arms: list[Arm] = []
    try:
        for key in keys:
            arms.append(_arm(ctx, key))
        survivors = _start(arms, threads)
        for survivor in survivors:
            survivor.pause()  # an idle worker elsewhere; paused so the victim takes every booking
        for survivor in survivors:
            survivor.wait_paused()  # and a fetch it sent just before cannot take a booking
        for arm in arms:
            arm.stack.publisher.publish(sample_bookings("RW-", 1)[0])  # caches the Zoom token in Redis
        for arm in arms:
            arm.stack.wait_bookings("RW-", 1, timeout=60, watch=[arm.victim])  # type: ignore[list-item]
            arm.sim.latency_seconds = hold  # every Zoom call now hangs until the kill
            for event in sample_bookings("RK-", threads):
                arm.stack.publisher.publish(event)
        for arm in arms:
            wait_until(lambda arm=arm: _open_intents(arm.stack) >= threads, timeout=60,  # type: ignore[misc]
                       what=f"{arm.key}: {threads} syncs in flight", watch=[arm.victim])  # type: ignore[list-item]
            arm.held = _held(arm.stack)
            if not arm.held:
                raise RuntimeError(f"{arm.key}: the victim held no messages to recover")
        for arm, survivor in zip(arms, survivors, strict=True):
            arm.victim.kill()  # type: ignore[union-attr]
            arm.killed_at = time.monotonic()
            survivor.resume()
            arm.sim.latency_seconds = 0.0
        for arm in arms:
            arm.locks_left = _locks(arm.stack)
        _watch(arms, threads, done_cap)
    finally:
        for arm in arms:
            arm.stack.stop()
            arm.sim.stop()
    return arms


def _start(arms: list[Arm], threads: int) -> list[Proc]:
    """A victim and a survivor per arm, all starting at once; returns the survivors."""
    launched = []
    for arm in arms:
        victim, before = arm.stack.launch_workers(1, threads, label="victim", command=arm.command)
        survivor, _ = arm.stack.launch_workers(1, threads, label="survivor", command=arm.command)
        arm.victim = victim
        launched.append((arm, survivor, before))
    for arm, survivor, before in launched:
        wait_until(lambda arm=arm, before=before: len(arm.stack.heartbeat_ids() - before) >= 2,  # type: ignore[misc]
                   timeout=90, what=f"{arm.key}: victim and survivor to start", interval=0.1,
                   watch=[arm.victim, survivor])  # type: ignore[list-item]
    return [survivor for _, survivor, _ in launched]


def _open_intents(stack: Stack) -> int:
    with stack.database.session() as s:
        return int(s.exec(select(func.count()).select_from(ProvisioningIntent).where(
            col(ProvisioningIntent.appointment_id).startswith("RK-"), ProvisioningIntent.status == "open")).one())


def _held(stack: Stack) -> dict[str, set[str]]:
    """Every message some worker has fetched and not acknowledged (only the victim has any)."""
    held = {}
    for key in stack.redis.scan_iter(match=f"{stack.namespace}:__acks__.*", count=1000):
        members = {str(m) for m in stack.redis.smembers(key)}  # type: ignore[union-attr]
        if members:
            held[str(key)] = members
    return held


def _still_stranded(arm: Arm) -> int:
    """How many held messages are still in the dead worker's set or back in the queue."""
    redis, ns = arm.stack.redis, arm.stack.namespace
    pipe = redis.pipeline(transaction=False)
    for ack_key in arm.held:
        pipe.smembers(ack_key)
        pipe.lrange(f"{ns}:{_queue(ack_key)}", 0, -1)  # ack key: <ns>:__acks__.<worker id>.<queue>
    replies = pipe.execute()
    stranded = 0
    for index, ids in enumerate(arm.held.values()):
        present = {str(m) for m in replies[2 * index]} | {str(m) for m in replies[2 * index + 1]}
        stranded += len(ids & present)
    return stranded


def _locks(stack: Stack) -> list[float]:
    """Seconds until each per-appointment sync lock (workers/meetings/sync.py) left in Redis expires."""
    keys = list(stack.redis.scan_iter(match=f"{stack.namespace}:lock:sync:*", count=1000))
    return [max(0.0, int(stack.redis.pttl(key)) / 1000) for key in keys]


def _queue(ack_key: str) -> str:
    return ack_key.split(":__acks__.", 1)[1].split(".", 1)[1]


def _watch(arms: list[Arm], total: int, done_cap: float) -> None:
    while True:
        now = time.monotonic()
        waiting = False
        for arm in arms:
            elapsed = now - arm.killed_at
            if arm.recovered_after is None and elapsed <= arm.cap:
                if _still_stranded(arm) == 0:
                    arm.recovered_after = time.monotonic() - arm.killed_at
                else:
                    waiting = True
            if done_cap and arm.done_after is None and elapsed <= done_cap:
                if arm.stack.bookings_done("RK-") >= total:
                    arm.done_after = time.monotonic() - arm.killed_at
                else:
                    waiting = True
        if not waiting:
            return
        time.sleep(POLL_S)


def _seconds(value: float | None, cap: float) -> str:
    return f"> {cap:g} s (not within the cap)" if value is None else f"{value:.1f} s"


def _fill(section: Section, ctx: Context, results: list[list[Arm]]) -> None:
    scale = ctx.scale
    ours_trials = [trial[0] for trial in results]
    ours, default = results[0]
    times = [a.recovered_after if a.recovered_after is not None else math.inf for a in ours_trials]
    worst = max(times)
    held = sum(len(ids) for ids in ours.held.values())
    if len(times) > 1:
        spread = ", ".join(_seconds(a.recovered_after, a.cap).split(" (")[0] for a in ours_trials)
        ours_text = f"worst {_seconds(None if math.isinf(worst) else worst, ours.cap)} of {len(times)} trials ({spread}; median {statistics.median(times):.1f} s)"
    else:
        ours_text = _seconds(ours.recovered_after, ours.cap)
    if not math.isinf(worst) and default.recovered_after is not None:
        ratio, ratio_text = worst / default.recovered_after, None
    elif not math.isinf(worst):
        ratio, ratio_text = None, f"< {worst / default.cap:.2g}"
    else:
        ratio, ratio_text = None, "n/a"
    section.rows.append(Row(
        ITEM, f"SIGKILL → {held} in-flight messages running elsewhere", ours_text,
        f"{default.name} ({default.settings})", _seconds(default.recovered_after, default.cap),
        value=worst, ratio=ratio, ratio_text=ratio_text, target=TARGET))
    if scale.recovery_done_cap:
        section.rows.append(Row(
            ITEM, f"SIGKILL → those {scale.threads} bookings done (meeting + both mails)",
            _seconds(ours.done_after, scale.recovery_done_cap), default.name,
            _seconds(default.done_after, scale.recovery_done_cap)))
    rows = []
    for number, trial in enumerate(results, start=1):
        for arm in trial:
            rows.append([str(number), arm.name, arm.settings,
                         ", ".join(f"{_queue(k)}: {len(v)}" for k, v in arm.held.items()),
                         _seconds(arm.recovered_after, arm.cap),
                         _seconds(arm.done_after, scale.recovery_done_cap) if number == 1 and scale.recovery_done_cap
                         else "not measured"])
    section.details.append(table(["trial", "arm", "broker settings", "messages held by the victim",
                                  "running elsewhere after", "bookings done after"], rows))
    if ours.locks_left:
        section.details.append(
            f"At the kill the victim left {len(ours.locks_left)} sync lock(s) in Redis (`<ns>:lock:sync:<appointment>`), expiring "
            f"{min(ours.locks_left):.0f}–{max(ours.locks_left):.0f} s later. A redelivered sync that finds its "
            "appointment's lock held retries until the lock expires, so the bookings are done only after the "
            "locks expire, however fast the messages came back.")
    section.data = {"trials": [{arm.key: {"settings": arm.settings, "cap_s": arm.cap,
                                          "held": {_queue(k): len(v) for k, v in arm.held.items()},
                                          "recovered_after_s": arm.recovered_after, "done_after_s": arm.done_after,
                                          "locks_left_s": arm.locks_left}
                                for arm in trial} for trial in results]}
    ctx.settings["6 recovery"] = (f"victim and survivor: 1 process × {scale.threads} threads each; "
                                  f"{len(results)} trial(s) of ours; caps {ours.cap:g} s (ours), "
                                  f"{default.cap:g} s (defaults), {scale.recovery_done_cap:g} s (bookings done)")
    arms = [*ours_trials, default]
    labels = [f"telemed #{n}" if len(ours_trials) > 1 else "telemed settings" for n in range(1, len(ours_trials) + 1)]
    plot = plots.bars(ctx.out / "recovery.png", "SIGKILL → in-flight messages running elsewhere",
                      [*labels, "Dramatiq defaults"],
                      [a.recovered_after if a.recovered_after is not None else a.cap for a in arms], "seconds",
                      line=10, line_label="target: < 10 s",
                      annotations=[_seconds(a.recovered_after, a.cap).split(" (")[0] for a in arms])
    if plot:
        section.plots.append(plot)
