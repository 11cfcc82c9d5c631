"""5. Booking latency: how long the booking system waits for ``POST /v1/events``.

An open-loop generator (its own process) sends a signed booking every 10 ms — 100 per
second, whatever the answers — and counts each latency from the *scheduled* send time.
Four arms, one after another, each on fresh bookings, with the Zoom simulator answering
in 300 ms:

* the synchronous baseline (``benchmarks/sync_baseline.py``): validates the event and
  creates the Zoom meeting inside the request, as clinic plugins do;
* ``telemed web`` alone: validate, commit to the inbox, queue the id;
* ``telemed web`` while ``telemed worker --nice 10`` processes the bookings on the same
  machine (one host, as ``telemed run`` deploys it: the workers yield the CPU to the web);
* ``telemed web`` while ``telemed worker`` at the web's own priority processes them (one
  host, deployed without that care: the workers compete for the same CPUs).

Percentiles count successful answers (202 for telemed, 201 for the baseline); failures
are listed beside them. Between the second and third arm, py-spy profiles ``telemed web``
under the same load, to show where a request's CPU goes.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from telemed.benchmarks import loadgen, plots
from telemed.benchmarks.broker_efficiency import ingress_available
from telemed.benchmarks.context import Context
from telemed.benchmarks.procs import Proc, machine_busy_seconds
from telemed.benchmarks.profiling import Profile, Recorder, profile_markdown
from telemed.benchmarks.report import Row, Section, below, fmt, table
from telemed.benchmarks.services import python_env
from telemed.benchmarks.stack import Stack, free_port, start_simulator, wait_http
from telemed.run import WORKER_NICENESS

ITEM, KEY, TITLE = 5, "booking-latency", "Booking latency"
LATENCY_S = 0.3
TARGET = below(0.1)
WARMUP = 10  # requests before each arm, not counted


def run(ctx: Context) -> Section:
    section = Section(ITEM, KEY, TITLE, method=__doc__.split("\n\n", 1)[1])  # type: ignore[union-attr]
    scale = ctx.scale
    sim = start_simulator(LATENCY_S)
    stack = Stack(ctx.services, "booking-latency", sim)
    arms: dict[str, dict[str, Any]] = {}
    profile = Profile(error="skipped at this scale")
    try:
        web, url = stack.launch_web()  # boots beside the baseline's server; idle while the baseline runs
        ctx.step(f"5 booking latency: synchronous baseline, {scale.request_rate:g}/s for {scale.request_seconds:g} s")
        arms["baseline"] = _baseline_arm(ctx, stack, ready=lambda: wait_http(url + "/healthz", web))
        if not ingress_available(url):
            raise RuntimeError("telemed web has no POST /v1/events yet (the ingress issue)")
        ctx.step("5 booking latency: telemed web alone")
        arms["alone"] = _arm(ctx, stack, url, "WA-", ok=202, server=web)
        if scale.profile_web_seconds:
            ctx.step(f"5 booking latency: profiling telemed web for {scale.profile_web_seconds:g} s of the same load")
            profile = _profile_web(stack, web, url, scale.profile_web_seconds, scale.request_rate)
        niced = stack.start_workers(scale.processes, scale.threads, command=[
            sys.executable, "-m", "telemed", "worker", "--processes", str(scale.processes),
            "--threads", str(scale.threads), "--nice", str(WORKER_NICENESS)])
        ctx.step(f"5 booking latency: telemed web with workers running at niceness {WORKER_NICENESS}")
        arms["niced"] = _arm(ctx, stack, url, "WN-", ok=202, server=web)
        niced.stop()
        stack.start_workers(scale.processes, scale.threads)
        ctx.step("5 booking latency: telemed web with workers running at the same priority")
        arms["busy"] = _arm(ctx, stack, url, "WW-", ok=202, server=web)
    finally:
        stack.stop()
        sim.stop()
    _fill(section, ctx, arms, profile)
    return section


def _profile_web(stack: Stack, web: Proc, url: str, seconds: float, rate: float) -> Profile:
    recorder = Recorder(web.pid, stack.workdir / "py-spy-web.txt")
    time.sleep(1.0)  # let py-spy attach
    try:
        loadgen.run_process(url + "/v1/events", mode="open", secret=stack.ingress_secret, workdir=stack.workdir,
                            prefix="WP-", rate=rate, seconds=seconds)
    finally:
        profile = recorder.stop()
    return profile


def _baseline_arm(ctx: Context, stack: Stack, ready: Callable[[], None]) -> dict[str, Any]:
    port = free_port()
    env = python_env(BENCH_ZOOM_API_URL=stack.sim.api_url, BENCH_ZOOM_TOKEN=stack.sim.issue_token())
    proc = Proc.start("sync-baseline", [sys.executable, "-m", "telemed.benchmarks.sync_baseline", "--port", str(port)],
                      env=env, cwd=stack.workdir, log_path=stack.workdir / "sync-baseline.log")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/openapi.json", proc)
        ready()  # nothing else is still starting up while the baseline is measured
        return _arm(ctx, stack, url, "SB-", ok=201, server=proc)
    finally:
        proc.stop()


def _arm(ctx: Context, stack: Stack, url: str, prefix: str, *, ok: int, server: Proc) -> dict[str, Any]:
    scale = ctx.scale
    endpoint = url + "/v1/events"
    busy, server_cpu = machine_busy_seconds(), server.cpu_seconds()
    began = time.monotonic()
    summary = loadgen.run_process(endpoint, mode="open", secret=stack.ingress_secret, workdir=stack.workdir,
                                  prefix=prefix, rate=scale.request_rate, seconds=scale.request_seconds,
                                  warmup=WARMUP)
    busy = (machine_busy_seconds() - busy) / ((time.monotonic() - began) * (os.cpu_count() or 1))
    server_cpu = server.cpu_seconds() - server_cpu  # warm-up requests included
    results = summary["results"]
    latencies = [1000 * (r["done"] - r["scheduled"]) for r in results if r["status"] == ok]
    lag = [1000 * (r["sent"] - r["scheduled"]) for r in results]
    return {"requests": len(results), "ok": len(latencies), "statuses": loadgen.statuses(summary),
            "latencies_ms": latencies, "p50": loadgen.percentile(latencies, 50),
            "p99": loadgen.percentile(latencies, 99), "max": max(latencies, default=float("nan")),
            "send_lag_p99": loadgen.percentile(lag, 99), "machine_busy": busy,
            "server_cpu_ms_per_request": 1000 * server_cpu / (len(results) + WARMUP)}


NAMES = {"baseline": "synchronous baseline (Zoom inside the request)", "alone": "telemed web alone",
         "niced": f"telemed web, workers running at niceness {WORKER_NICENESS} (as telemed run)",
         "busy": "telemed web, workers running at the same priority"}


def _fill(section: Section, ctx: Context, arms: dict[str, dict[str, Any]], profile: Profile) -> None:
    scale = ctx.scale
    base = arms["baseline"]
    for key in ("alone", "niced", "busy"):
        arm = arms[key]
        section.rows.append(Row(
            ITEM, f"p99 of POST /v1/events at {scale.request_rate:g}/s: {NAMES[key]}",
            f"{fmt(arm['p99'])} ms (p50 {fmt(arm['p50'])} ms)", "synchronous baseline p50",
            f"{fmt(base['p50'])} ms (p99 {fmt(base['p99'])} ms)", value=arm["p99"],
            ratio=arm["p99"] / base["p50"] if base["p50"] else None, target=TARGET))
    rows = []
    for key in ("baseline", "alone", "niced", "busy"):
        arm = arms[key]
        failures = {k: v for k, v in arm["statuses"].items() if k not in {"201", "202"}}
        rows.append([NAMES[key], str(arm["requests"]), fmt(arm["p50"]), fmt(arm["p99"]), fmt(arm["max"]),
                     fmt(arm["send_lag_p99"]), fmt(arm["server_cpu_ms_per_request"]), f"{100 * arm['machine_busy']:.0f} %",
                     ", ".join(f"{k}: {v}" for k, v in failures.items()) or "none"])
    section.details.append(table(["arm", "requests", "p50 ms", "p99 ms", "max ms", "generator send lag p99 ms",
                                  "server CPU ms per request", "machine CPU busy", "failures"], rows))
    section.details.append(
        "Where telemed web's CPU goes: py-spy sampled it under the same open-loop load, right after the "
        "web-alone arm (no workers yet). " + profile_markdown(profile, arms["alone"]["server_cpu_ms_per_request"],
                                                      "request", "web CPU"))
    section.data = {key: {k: v for k, v in arm.items() if k != "latencies_ms"} for key, arm in arms.items()}
    section.data["profile_components"] = dict(profile.by_component)
    ctx.settings["5 booking latency"] = (f"open loop {scale.request_rate:g} requests/s for "
                                         f"{scale.request_seconds:g} s per arm, simulator latency "
                                         f"{LATENCY_S * 1000:.0f} ms, baseline on uvicorn (40 threads)")
    plot = plots.percentiles(ctx.out / "booking-latency.png", "POST /v1/events latency by percentile",
                             {NAMES[k]: arms[k]["latencies_ms"] for k in ("baseline", "alone", "niced", "busy")},
                             line=base["p50"] / 10 if base["p50"] == base["p50"] else None,
                             line_label="target: p99 below baseline p50 / 10")
    if plot:
        section.plots.append(plot)
