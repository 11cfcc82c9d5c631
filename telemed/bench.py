"""``telemed bench``: run the benchmarks (``benchmarks/``) and write ``docs/benchmarks/``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def parse_only(value: str | None) -> list[str] | None:
    names = [name.strip() for name in (value or "").split(",") if name.strip()]
    return names or None


def run_bench_command(*, only: str | None, scale: str, out: Path, processes: int | None = None,
                      threads: int | None = None, echo: Callable[[str], None] = print) -> int:
    """Returns 0 when every chosen benchmark ran (a missed target is a result, not an
    error), 1 when one failed, 2 for bad options or a missing ``bench`` extra."""
    try:
        import matplotlib  # noqa: F401
        import psutil  # noqa: F401
    except ImportError as exc:
        echo(f"error: the benchmarks need the bench extra ({exc.name} is missing): pip install 'telemed[bench]'")
        return 2
    # lazy: the bench extra is optional (checked just above), and telemed --help must not
    # import the benchmarks
    from telemed.benchmarks.runner import UnknownBenchmark, run_bench, select
    from telemed.benchmarks.scale import scale_named

    names = parse_only(only)
    try:
        select(names)
    except UnknownBenchmark as exc:
        echo(f"error: {exc}")
        return 2
    report = run_bench(names, scale_named(scale).with_workers(processes, threads), out)
    echo(f"\n{report.backend}, scale {report.scale}\n")
    for row in report.summary_rows():
        number, title, measure, ours, baseline, _, ratio, target, result = row
        versus = f" vs {baseline}" if baseline not in {"", "—"} else ""
        echo(f"{number}. {title}: {measure}: {ours}{versus}; ratio {ratio}; target {target}: {result.strip('*')}")
    echo(f"\nreport: {out / 'README.md'}")
    return 1 if any(section.error for section in report.sections) else 0
