"""The benchmark harness's pure parts: rates, percentiles, profile summaries, targets, choices."""

from __future__ import annotations

import math

import pytest

from benchmarks.loadgen import percentile
from benchmarks.profiling import summarize
from benchmarks.report import Report, Row, Section, at_least, below
from benchmarks.runner import UnknownBenchmark, select
from benchmarks.timeline import Timeline


def test_steady_rate_counts_only_the_middle_of_the_run() -> None:
    timeline = Timeline(total=100)
    # A slow start (10 done after 5 s), then 10 per second, then a straggler.
    for at, done in [(0, 0), (5, 10), (6, 20), (7, 30), (8, 40), (9, 50), (10, 60), (11, 70), (12, 80),
                     (13, 90), (30, 100)]:
        timeline.record(done, at=at)
    assert timeline.crossing(10) == 5
    assert timeline.crossing(15) == pytest.approx(5.5)
    assert timeline.steady_rate() == pytest.approx(10.0)


def test_steady_rate_is_none_until_the_run_got_far_enough() -> None:
    timeline = Timeline(total=10)
    timeline.record(0, at=0)
    timeline.record(5, at=1)
    assert timeline.steady_rate() is None


def test_nearest_rank_percentiles() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7
    assert math.isnan(percentile([], 50))


def test_profile_attributes_each_sample_to_the_deepest_known_component() -> None:
    raw = "\n".join([
        'process 1:"python";run (dramatiq/worker.py:1);wrapper (workers/actors.py:2);'
        "sync_meeting (workers/sync.py:3);execute (sqlalchemy/engine/base.py:4);"
        "_execute_send (psycopg/_cursor_base.py:5) 6",
        'process 1:"python";run (dramatiq/worker.py:1);wrapper (workers/actors.py:2);'
        "deliver (workers/delivery.py:3);render (jinja2/environment.py:4);escape (re/__init__.py:5) 3",
        'process 1:"python";run (dramatiq/worker.py:1);plan_sync (workers/decisions.py:9) 1',
        "not a stack line",
    ])
    profile = summarize(raw)
    assert profile.samples == 10
    assert profile.by_component["database (SQLAlchemy, driver, store/)"] == 6
    assert profile.by_component["mail: render and send"] == 3
    assert profile.by_component["Dramatiq (consumer, middleware, messages)"] == 1
    assert profile.self_time["_execute_send (psycopg/_cursor_base.py)"] == 6
    assert profile.own_inclusive["wrapper (workers/actors.py)"] == 9


def test_targets_judge_ratio_or_value() -> None:
    assert Row(1, "m", "x", ratio=0.6, target=at_least(0.5)).result == "**pass**"
    assert Row(1, "m", "x", ratio=0.4, target=at_least(0.5)).result == "**miss**"
    assert Row(6, "m", "x", value=12.0, target=below(10, on="value")).result == "**miss**"
    assert Row(6, "m", "x", value=math.inf, target=below(10, on="value")).result == "**miss**"
    assert Row(1, "m", "x", target=at_least(0.5)).result == "n/a"
    assert Row(1, "m", "x").result == "—"


def test_report_lists_every_row_and_failure(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ok = Section(2, "latency-bound", "Latency-bound efficiency",
                 rows=[Row(2, "bookings/s", "72", "ceiling", "80", ratio=0.9, target=at_least(0.9))])
    failed = Section(5, "booking-latency", "Booking latency", error="RuntimeError: no ingress\ntraceback")
    report = Report(scale="small", backend="embedded", embedded=True, settings={"CPU": "2"},
                    sections=[failed, ok], generated_at="now")
    text = report.write(tmp_path).read_text()
    assert "| 2 | Latency-bound efficiency | bookings/s | 72 | 80 | ceiling | 0.9 | ≥ 0.9 | **pass** |" in text
    assert "| 5 | Booking latency | — | failed: RuntimeError: no ingress |" in text
    assert "Embedded services" in text and "telemed bench --scale full" in text
    assert text.index("## 2.") < text.index("## 5.")
    assert (tmp_path / "results.json").exists()


def test_selecting_benchmarks_by_name_or_number() -> None:
    assert [b.key for b in select(["recovery", "1"])] == ["broker", "recovery"]
    assert [b.key for b in select(["memory"])] == ["broker", "memory"]  # measured during run 1
    assert len(select(None)) == 7
    with pytest.raises(UnknownBenchmark, match="warp"):
        select(["warp"])


def test_zoom_limit_rows_become_report_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import types

    from benchmarks.context import Context
    from benchmarks.scale import scale_named
    from benchmarks.zoom_items import run

    rate = {"processes": 2, "threads": 8, "seconds": 6.0, "limit_per_second": 20.0}
    token = {"processes": 2, "threads": 8, "seconds": 8.0, "lifetime": 5.0, "calls": 100, "failed": 0}
    module = types.SimpleNamespace(
        __name__="benchmarks.zoom_limits",
        run_zoom_limits=lambda ctx: {"rows": [
            {"arm": "telemed", **rate, "created_per_second": 18.2, "share_of_limit": 0.91, "answers_429": 0},
            {"arm": "unpaced", **rate, "created_per_second": 19.5, "share_of_limit": 0.975, "answers_429": 340}]},
        run_tokens=lambda ctx: {"rows": [
            {"token": "doctor", "arm": "telemed", **token, "grants_per_lifetime": 1.0, "invalid_grant": 0,
             "grant_alive": True},
            {"token": "doctor", "arm": "naive", **token, "grants_per_lifetime": 3.1, "invalid_grant": 14,
             "grant_alive": False},
            {"token": "account", "arm": "telemed", **token, "grants_per_lifetime": 1.25, "invalid_grant": 0,
             "grant_alive": None},
            {"token": "account", "arm": "naive", **token, "grants_per_lifetime": 6.0, "invalid_grant": 0,
             "grant_alive": None}]},
    )
    ctx = Context(services=None, scale=scale_named("tiny"), out=tmp_path, workdir=tmp_path)  # type: ignore[arg-type]
    limits = run(module, 3, ctx)  # type: ignore[arg-type]
    assert [row.result for row in limits.rows] == ["**pass**"]
    assert "340 × 429" in limits.rows[0].baseline
    tokens = run(module, 4, ctx)  # type: ignore[arg-type]
    assert [(row.measure.split(":")[0], row.result) for row in tokens.rows] == [
        ("doctor token", "**pass**"), ("account token", "**miss**")]
    assert "the doctor must reconnect" in tokens.rows[0].baseline
