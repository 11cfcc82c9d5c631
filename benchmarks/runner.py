"""Runs the chosen benchmarks one after another and writes the report.

A benchmark is a module with ``ITEM``, ``KEY``, ``TITLE`` and ``run(ctx) -> Section``,
run in the order of ``BENCHMARKS``. One that fails becomes an "error" row with its
reason; the others still run.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from telemed.benchmarks import machine
from telemed.benchmarks.context import Context
from telemed.benchmarks.report import Report, Section
from telemed.benchmarks.scale import Scale
from telemed.benchmarks.services import Services
from telemed.benchmarks.zoom_items import run as run_zoom_item
from telemed.logging import configure_logging


@dataclass(frozen=True)
class Benchmark:
    item: int
    key: str
    module: str
    title: str


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(1, "broker", "telemed.benchmarks.broker_efficiency", "Broker efficiency"),
    Benchmark(2, "latency-bound", "telemed.benchmarks.latency_bound", "Latency-bound efficiency"),
    Benchmark(3, "zoom-limits", "telemed.benchmarks.zoom_limits", "Zoom limits"),
    Benchmark(4, "tokens", "telemed.benchmarks.zoom_limits", "Tokens"),
    Benchmark(5, "booking-latency", "telemed.benchmarks.booking_latency", "Booking latency"),
    Benchmark(6, "recovery", "telemed.benchmarks.recovery", "Recovery"),
    Benchmark(7, "memory", "telemed.benchmarks.memory", "Memory"),
    Benchmark(8, "noisy-neighbour", "telemed.benchmarks.noisy_neighbour", "Noisy neighbour"),
    Benchmark(9, "tenancy", "telemed.benchmarks.tenancy_scale", "Scale of tenancy"),
)


class UnknownBenchmark(ValueError):
    pass


def select(names: Sequence[str] | None) -> list[Benchmark]:
    """Benchmarks by key or item number, in item order, with what they need added."""
    if not names:
        return list(BENCHMARKS)
    by_name = {b.key: b for b in BENCHMARKS} | {str(b.item): b for b in BENCHMARKS}
    chosen: set[Benchmark] = set()
    for name in names:
        benchmark = by_name.get(name.strip().lower())
        if benchmark is None:
            known = ", ".join(f"{b.key} ({b.item})" for b in BENCHMARKS)
            raise UnknownBenchmark(f"unknown benchmark {name!r}; choose from {known}")
        chosen.add(benchmark)
    if any(b.key == "memory" for b in chosen):
        chosen.add(by_name["broker"])  # memory is measured during run 1
    return sorted(chosen, key=lambda b: b.item)


def run_bench(names: Sequence[str] | None, scale: Scale, out: Path, *, workdir: Path | None = None,
              log: Callable[[str], None] | None = None) -> Report:
    chosen = select(names)
    scratch = workdir or Path(tempfile.mkdtemp(prefix="telemed-bench-"))
    scratch.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    _quiet_logging()
    started = time.monotonic()
    settings = machine.describe()
    services = Services.from_environment(scratch)
    ctx = Context(services=services, scale=scale, out=out, workdir=scratch, settings=settings)
    if log is not None:
        ctx.log = log
    sections: list[Section] = []
    failed = False
    try:
        versions = services.versions()
        settings.update({
            "services": services.kind, "Redis": versions["redis"], "database": versions["database"],
            "scale": scale.name, "worker processes × threads": f"{scale.processes} × {scale.threads}",
            "mail": ".eml files (the product's default channel without SMTP)",
            "log level of telemed processes": "INFO, JSON lines to a file",
            "Zoom pacing in the pipeline": "per-second limits lifted in items 1, 2, 5, 6 (they measure the "
                                           "pipeline) and in the baselines of items 3 and 9; production settings "
                                           "in item 3's telemed arm and in items 8 and 9; bookings spread 40 per "
                                           "doctor (item 3: over 40 doctors), under the 100 creates per host per day",
            "clinic gate (TELEMED_CLINIC_IN_FLIGHT)": "items 1–7 serve one clinic and set it above their threads "
                                                      "(the gate runs, never holds work back); items 8 and 9 use "
                                                      "the default",
        })
        for benchmark in chosen:
            ctx.step(f"{benchmark.item}. {benchmark.title}")
            began = time.monotonic()
            section = _run_one(benchmark, ctx)
            section.data["seconds"] = round(time.monotonic() - began, 1)
            ctx.step(f"{benchmark.item}. {benchmark.title}: {'failed' if section.error else 'done'} "
                     f"in {section.data['seconds']:.0f} s")
            failed = failed or section.error is not None
            sections.append(section)
    finally:
        services.close()
    settings["run time"] = f"{time.monotonic() - started:.0f} s"
    report = Report(scale=scale.name, backend=services.kind,
                    embedded=not (services.real_redis and services.real_database), settings=settings,
                    sections=sections, generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    report.write(out)
    if failed:
        ctx.step(f"some benchmarks failed; logs kept in {scratch}")
    elif workdir is None:
        shutil.rmtree(scratch, ignore_errors=True)
    return report


def _run_one(benchmark: Benchmark, ctx: Context) -> Section:
    try:
        module = importlib.import_module(benchmark.module)
    except ModuleNotFoundError as exc:
        return Section(benchmark.item, benchmark.key, benchmark.title,
                       error=f"{benchmark.module} is not available: {exc}")
    except Exception as exc:
        return Section(benchmark.item, benchmark.key, benchmark.title,
                       error=f"{benchmark.module} failed to import: {type(exc).__name__}: {exc}")
    try:
        return _call(module, benchmark, ctx)
    except Exception as exc:
        ctx.step(f"{benchmark.item}. {benchmark.title} failed: {type(exc).__name__}: {exc}")
        return Section(benchmark.item, benchmark.key, benchmark.title,
                       error=f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}")


def _call(module: ModuleType, benchmark: Benchmark, ctx: Context) -> Section:
    if hasattr(module, "run") and getattr(module, "ITEM", None) == benchmark.item:
        return module.run(ctx)  # type: ignore[no-any-return]
    return run_zoom_item(module, benchmark.item, ctx)  # items 3 and 4: benchmarks/zoom_limits.py


def _quiet_logging() -> None:
    """The benchmark process publishes and reads the store too: keep its own logs short."""
    configure_logging(format="console", level="WARNING")
