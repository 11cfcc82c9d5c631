"""1. Broker efficiency: the whole pipeline against raw Dramatiq on the same Redis.

Ours: bookings are POSTed to ``telemed web`` (signed, as fast as it takes them) while
``telemed worker`` processes them with a zero-latency Zoom simulator; a booking is done
when its meeting exists and both invitations (patient, doctor) are delivered. Bookings/s
times the Dramatiq messages one booking takes gives messages/s.

Baseline: a no-op actor on a stock ``RedisBroker``, same Redis, same processes and
threads, draining a preloaded queue. Reference, between the two: the same with one
committed database transaction per message (one row inserted through SQLAlchemy's
session, as the store writes), i.e. the least a durable message costs. All rates are
taken between 10 % and 90 % of completions. The same run also leaves the peak memory of
each process (item 7).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import httpx
from dramatiq.message import Message

from telemed.benchmarks import cpu_groups, loadgen, plots
from telemed.benchmarks.context import Context
from telemed.benchmarks.procs import CpuMeter, PeakMemory, Proc, machine_busy_seconds
from telemed.benchmarks.profiling import Profile, Recorder, profile_markdown
from telemed.benchmarks.report import Row, Section, at_least, fmt, table
from telemed.benchmarks.stack import Stack, sample_bookings, start_simulator, wait_http
from telemed.benchmarks.timeline import Timeline, follow
from telemed.store.db import normalise_url

ITEM, KEY, TITLE = 1, "broker", "Broker efficiency"
TARGET = at_least(0.5)
NOOP_QUEUE = "bench-noop"  # benchmarks.noop_actor.QUEUE (importing that module installs its broker)
COMMIT_QUEUE = "bench-commit"  # benchmarks.commit_actor.QUEUE, likewise


def run(ctx: Context) -> Section:
    section = Section(ITEM, KEY, TITLE, method=__doc__.split("\n\n", 1)[1])  # type: ignore[union-attr]
    scale = ctx.scale
    sim = start_simulator(0.0)
    stack = Stack(ctx.services, "broker", sim)
    memory = PeakMemory()
    try:
        web, url = stack.launch_web()  # boots while the baseline's queue fills; idle before it is used
        ctx.step(f"1 broker: raw Dramatiq no-op, {scale.noop_messages} messages, "
                 f"{scale.processes} processes × {scale.threads} threads")
        _fill_noop_queue(stack, scale.noop_messages)
        wait_http(url + "/healthz", web)
        noop = _measure_noop(stack, scale.processes, scale.threads, scale.noop_messages)
        ctx.step(f"1 broker: Dramatiq + one committed transaction per message, {scale.noop_messages // 4} messages")
        committed = _measure_commit(stack, scale.processes, scale.threads, scale.noop_messages // 4)
        ctx.step("1 broker: starting telemed worker")
        workers = stack.start_workers(scale.processes, scale.threads)
        memory.watch("web", web)
        memory.watch("worker", workers)
        memory.start()
        ctx.step(f"1 broker: {scale.bookings} bookings end to end")
        ours = _measure_pipeline(ctx, stack, web, url, workers)
        memory.stop()
        ctx.shared["run1_memory"] = memory.by_label()
        profile = Profile(error="skipped at this scale")
        if scale.profile_bookings:
            ctx.step(f"1 broker: profiling {scale.profile_bookings} more bookings with py-spy")
            profile = _profile(stack, workers, scale.profile_bookings, ctx)
        _fill(section, ctx, noop, ours, profile, committed)
    finally:
        memory.stop()
        stack.stop()
        sim.stop()
    return section


# The baseline ---------------------------------------------------------------------------


def _fill_noop_queue(stack: Stack, count: int) -> None:
    for n in range(count):
        stack.broker.enqueue(Message(queue_name=NOOP_QUEUE, actor_name="noop", args=(n,), kwargs={},
                                     options={}))


def _measure_commit(stack: Stack, processes: int, threads: int, count: int) -> dict[str, Any]:
    from sqlalchemy import create_engine


    engine = create_engine(normalise_url(stack.database_url))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE bench_commits (n INTEGER NOT NULL)")
    engine.dispose()
    for n in range(count):
        stack.broker.enqueue(Message(queue_name=COMMIT_QUEUE, actor_name="commit", args=(n,), kwargs={}, options={}))
    return _measure_noop(stack, processes, threads, count, module="telemed.benchmarks.commit_actor", queue=COMMIT_QUEUE,
                         label="dramatiq-commit")


def _measure_noop(stack: Stack, processes: int, threads: int, count: int, *, module: str = "telemed.benchmarks.noop_actor",
                  queue: str = NOOP_QUEUE, label: str = "raw-dramatiq") -> dict[str, Any]:
    pending_key = f"{stack.namespace}:{queue}.msgs"  # message bodies live here until acked
    timeline = Timeline(total=count)
    proc = stack.start_workers(processes, threads, label=label, wait=False, command=[
        sys.executable, "-m", "dramatiq", module, "--processes", str(processes),
        "--threads", str(threads)])
    first: list[tuple[int, float]] = []  # (done, worker CPU seconds) at the first completion

    def done() -> int:
        n = count - int(stack.redis.hlen(pending_key))
        if n and not first:  # CPU from here on: process start-up is not the broker's cost
            first.append((n, proc.cpu_seconds()))
        return n

    follow(timeline, done, timeout=max(60, count / 50), interval=0.02, check=proc.check_alive)
    cpu = proc.cpu_seconds() - first[0][1]
    measured = count - first[0][0]
    proc.stop()
    return {"messages": count, "rate": timeline.steady_rate(), "timeline": timeline,
            "cpu_ms_per_message": 1000 * cpu / measured if measured else float("nan")}


# Ours -----------------------------------------------------------------------------------


def ingress_available(url: str) -> bool:
    """A POST without a signature gets 401 from the ingress; 404/405 means no ingress yet."""
    try:
        return httpx.post(url + "/v1/events", content=b"{}", timeout=5).status_code == 401
    except httpx.HTTPError:
        return False


def _measure_pipeline(ctx: Context, stack: Stack, web: Proc, url: str, workers: Proc) -> dict[str, Any]:
    scale = ctx.scale
    prefix = "B-"
    total = scale.bookings
    timeline = Timeline(total=total)
    meter = CpuMeter(cpu_groups.groups(ctx.services, workers=workers, web=web))
    requests_before = len(stack.sim.requests())
    ingest: dict[str, Any] = {}
    via_http = ingress_available(url)

    def post_all() -> None:
        try:
            ingest["summary"] = loadgen.run_process(
                url + "/v1/events", mode="closed", secret=stack.ingress_secret, workdir=stack.workdir,
                prefix=prefix, count=total, concurrency=scale.ingest_concurrency)
        except Exception as exc:
            ingest["error"] = f"{type(exc).__name__}: {exc}"

    counters = stack.server_counters()
    meter.start()
    busy = machine_busy_seconds()
    started = time.monotonic()
    if via_http:
        poster = threading.Thread(target=post_all, name="ingest", daemon=True)
        poster.start()
    else:
        held = stack.preload(sample_bookings(prefix, total))
        started = stack.release(held)

    def check() -> None:
        workers.check_alive()
        if "error" in ingest:
            raise RuntimeError(f"ingest failed: {ingest['error']}")

    finished = follow(timeline, lambda: stack.bookings_done(prefix), timeout=max(120, total), interval=0.1,
                      check=check)
    cpu = meter.stop()
    busy = (machine_busy_seconds() - busy) / ((finished - started) * (os.cpu_count() or 1))
    if via_http:
        poster.join(timeout=60)
    time.sleep(1.5)  # PostgreSQL publishes a backend's counters at most once a second
    per_booking = {name: (value - counters.get(name, 0)) / total for name, value in stack.server_counters().items()}
    progress = stack.progress(prefix)
    messages = progress["events"] + progress["appointments"] + progress["notices_sent"]
    zoom_calls = len(stack.sim.requests()) - requests_before
    result: dict[str, Any] = {
        "bookings": total, "via_http": via_http, "started": started, "finished": finished,
        "overall_rate": total / (finished - started), "rate": timeline.steady_rate() or total / (finished - started),
        "messages_per_booking": messages / total, "zoom_calls_per_booking": zoom_calls / total,
        "cpu_s": cpu, "timeline": timeline, "server_counters_per_booking": per_booking, "machine_busy": busy,
    }
    summary = ingest.get("summary")
    if summary:
        results = summary["results"]
        accepted = sum(1 for r in results if r["status"] == 202)
        span = max(r["done"] for r in results) - min(r["sent"] for r in results)
        result["ingest"] = {"accepted": accepted, "statuses": loadgen.statuses(summary),
                            "rate": accepted / span if span > 0 else float("nan"),
                            "p50_ms": loadgen.percentile([1000 * (r["done"] - r["sent"]) for r in results], 50)}
    return result


def _profile(stack: Stack, workers: Proc, count: int, ctx: Context) -> Profile:
    recorder = Recorder(workers.pid, stack.workdir / "py-spy.txt")
    time.sleep(1.0)  # let py-spy attach to every process before the burst
    held = stack.preload(sample_bookings("BP-", count))
    stack.release(held)
    try:
        stack.wait_bookings("BP-", count, timeout=max(120, count), watch=[workers])
    finally:
        profile = recorder.stop()
    return profile


# The report -----------------------------------------------------------------------------


def _fill(section: Section, ctx: Context, noop: dict[str, Any], ours: dict[str, Any], profile: Profile,
          committed: dict[str, Any]) -> None:
    scale = ctx.scale
    per_booking = ours["messages_per_booking"]
    ours_msgs = ours["rate"] * per_booking
    raw = noop["rate"]
    worker_cpu_ms = 1000 * ours["cpu_s"]["workers"] / ours["bookings"]
    section.rows = [
        Row(ITEM, "messages/s (bookings/s × messages per booking)",
            f"{fmt(ours_msgs)} msg/s ({fmt(ours['rate'])} bookings/s × {per_booking:.2g})",
            "raw Dramatiq no-op, same Redis, same processes × threads", f"{fmt(raw)} msg/s",
            value=ours_msgs, ratio=(ours_msgs / raw) if raw else None, target=TARGET),
        Row(ITEM, "reference: Dramatiq + one committed transaction per message (msg/s)",
            f"{fmt(committed['rate'])} msg/s ({committed['cpu_ms_per_message']:.2f} ms CPU per message)",
            "raw Dramatiq no-op, same Redis, same processes × threads", f"{fmt(raw)} msg/s",
            value=committed["rate"], ratio=(committed["rate"] / raw) if raw else None),
        Row(ITEM, "CPU per booking, all worker processes", f"{worker_cpu_ms:.1f} ms",
            f"raw Dramatiq CPU for {per_booking:.2g} no-op messages", f"{per_booking * noop['cpu_ms_per_message']:.2f} ms",
            ratio=worker_cpu_ms / (per_booking * noop["cpu_ms_per_message"]) if noop["cpu_ms_per_message"] else None),
    ]
    ingest = ours.get("ingest")
    lines = [
        ["processes × threads", f"{scale.processes} × {scale.threads} (both arms)"],
        ["bookings", f"{ours['bookings']} ({'POSTed to telemed web' if ours['via_http'] else 'published in-process: the web ingress was not available'})"],
        ["Zoom simulator latency", "0 ms"],
        ["bookings/s, 10 %–90 % of completions", fmt(ours["rate"])],
        ["bookings/s, first POST to last mail", fmt(ours["overall_rate"])],
        ["Dramatiq messages per booking (from the store: event + sync + notices)", f"{per_booking:.3g}"],
        ["Zoom calls per booking (simulator request log)", f"{ours['zoom_calls_per_booking']:.3g}"],
        ["raw Dramatiq no-op messages/s, 10 %–90 %", f"{fmt(raw)} ({noop['messages']} messages)"],
        ["raw Dramatiq CPU per no-op message (workers)", f"{noop['cpu_ms_per_message']:.3f} ms"],
        ["Dramatiq + one committed transaction per message: messages/s, 10 %–90 %",
         f"{fmt(committed['rate'])} ({committed['messages']} messages)"],
        ["Dramatiq + one committed transaction: CPU per message (workers)",
         f"{committed['cpu_ms_per_message']:.3f} ms"],
        ["telemed: worker CPU per Dramatiq message", f"{worker_cpu_ms / per_booking:.2f} ms"],
    ]
    lines.append(["machine CPU busy during the run (all processes, all CPUs)", f"{100 * ours['machine_busy']:.0f} %"])
    for name, value in ours["server_counters_per_booking"].items():
        lines.append([f"{name} per booking ¹", f"{value:.3g}"])
    if ingest:
        lines.append(["ingest: events/s accepted by telemed web (with workers running)",
                      f"{fmt(ingest['rate'])}; p50 {fmt(ingest['p50_ms'])} ms; statuses {ingest['statuses']}"])
    section.details.append(table(["run", "figure"], lines))
    if ours["server_counters_per_booking"]:
        section.details.append("¹ Approximate: the servers' own counters, so every client counts (this "
                               "benchmark's 10 Hz progress polling too, and for Redis anything else using that "
                               "server), and PostgreSQL publishes a backend's counts up to a second late.")
    cpu_rows = [[name, f"{1000 * seconds / ours['bookings']:.2f}"] for name, seconds in ours["cpu_s"].items()]
    section.details.append("CPU milliseconds per booking, by process (first POST to last mail):\n\n"
                           + table(["process", "CPU ms per booking"], cpu_rows))
    section.details.append(
        "Where the worker CPU goes: py-spy sampled every worker process while a further batch of bookings "
        "ran. " + profile_markdown(profile, worker_cpu_ms, "booking", "worker CPU"))
    section.data = {
        "processes": scale.processes, "threads": scale.threads, "bookings": ours["bookings"],
        "bookings_per_s": ours["rate"], "overall_bookings_per_s": ours["overall_rate"],
        "messages_per_booking": per_booking, "messages_per_s": ours_msgs, "raw_noop_messages_per_s": raw,
        "raw_noop_cpu_ms_per_message": noop["cpu_ms_per_message"],
        "commit_messages_per_s": committed["rate"], "commit_cpu_ms_per_message": committed["cpu_ms_per_message"],
        "zoom_calls_per_booking": ours["zoom_calls_per_booking"],
        "cpu_ms_per_booking": {k: 1000 * v / ours["bookings"] for k, v in ours["cpu_s"].items()},
        "ingest": ingest, "profile_components": dict(profile.by_component), "profile_samples": profile.samples,
    }
    ctx.settings["1 broker efficiency"] = (f"{scale.processes} processes × {scale.threads} threads, "
                                           f"simulator latency 0 ms, {ours['bookings']} bookings, "
                                           f"{noop['messages']} no-op messages")
    plot = plots.bars(ctx.out / "broker.png", "Dramatiq messages per second (same Redis, same processes × threads)",
                      ["telemed pipeline", "Dramatiq + 1 commit", "raw Dramatiq no-op"],
                      [ours_msgs, committed["rate"], raw], "messages/s",
                      line=TARGET_LINE * raw if raw else None, line_label="target: 0.5 × raw")
    if plot:
        section.plots.append(plot)
    if profile.by_component:
        shares = profile.by_component.most_common()
        plot = plots.hbars(ctx.out / "broker-cpu.png", "Worker CPU per booking by component (py-spy)",
                           [name.split(" (")[0] for name, _ in shares],
                           [worker_cpu_ms * n / profile.samples for _, n in shares], "CPU ms per booking")
        if plot:
            section.plots.append(plot)


TARGET_LINE = 0.5
