"""The benchmark harness's pure parts: rates, percentiles, profile summaries, targets, choices."""

from __future__ import annotations

import math

import pytest

from telemed.benchmarks.loadgen import percentile
from telemed.benchmarks.profiling import summarize
from telemed.benchmarks.report import Report, Row, Section, at_least, below
from telemed.benchmarks.runner import UnknownBenchmark, select
from telemed.benchmarks.timeline import Timeline


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
        "sync_meeting (workers/meetings/sync.py:3);execute (sqlalchemy/engine/base.py:4);"
        "_execute_send (psycopg/_cursor_base.py:5) 6",
        'process 1:"python";run (dramatiq/worker.py:1);wrapper (workers/actors.py:2);'
        "deliver (workers/delivery/relay.py:3);render (jinja2/environment.py:4);escape (re/__init__.py:5) 3",
        'process 1:"python";run (dramatiq/worker.py:1);plan_sync (workers/policy/decisions.py:9) 1',
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
    assert len(select(None)) == 9
    assert [b.key for b in select(["8", "tenancy"])] == ["noisy-neighbour", "tenancy"]
    with pytest.raises(UnknownBenchmark, match="warp"):
        select(["warp"])


def test_zoom_limit_rows_become_report_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import types

    from telemed.benchmarks.context import Context
    from telemed.benchmarks.scale import scale_named
    from telemed.benchmarks.zoom_items import run

    rate = {"processes": 2, "threads": 8, "seconds": 6.0, "limit_per_second": 20.0}
    pipe = {"processes": 2, "threads": 8, "bookings": 300, "doctors": 40, "per_doctor": 8, "limit_per_second": 20.0}
    token = {"processes": 2, "threads": 8, "seconds": 8.0, "lifetime": 5.0, "calls": 100, "failed": 0,
             "grants_per_lifetime_of_wall_time": 1.25}
    module = types.SimpleNamespace(
        __name__="telemed.benchmarks.zoom_limits",
        run_zoom_limits=lambda ctx: {"pipeline": [
            {"arm": "telemed", **pipe, "done": 300, "creates_per_second": 18.3, "share_of_limit": 0.915,
             "answers_429": 0},
            {"arm": "unpaced", **pipe, "done": 297, "creates_per_second": 19.1, "share_of_limit": 0.955,
             "answers_429": 340}], "rows": [
            {"arm": "telemed", **rate, "created_per_second": 18.2, "share_of_limit": 0.91, "answers_429": 0},
            {"arm": "unpaced", **rate, "created_per_second": 19.5, "share_of_limit": 0.975, "answers_429": 55}]},
        run_tokens=lambda ctx: {"rows": [
            {"token": "doctor", "arm": "telemed", **token, "grants_while_valid_max": 1,
             "grants_while_valid_mean": 0.67, "invalid_grant": 0, "grant_alive": True},
            {"token": "doctor", "arm": "naive", **token, "grants_while_valid_max": 1,
             "grants_while_valid_mean": 0.5, "invalid_grant": 14, "grant_alive": False},
            {"token": "account", "arm": "telemed", **token, "grants_while_valid_max": 2,
             "grants_while_valid_mean": 1.1, "invalid_grant": 0, "grant_alive": None},
            {"token": "account", "arm": "naive", **token, "grants_while_valid_max": 11,
             "grants_while_valid_mean": 6.0, "invalid_grant": 0, "grant_alive": None}]},
    )
    ctx = Context(services=None, scale=scale_named("tiny"), out=tmp_path, workdir=tmp_path)  # type: ignore[arg-type]
    limits = run(module, 3, ctx)  # type: ignore[arg-type]
    assert [row.result for row in limits.rows] == ["**pass**"]  # the pipeline's row is the headline
    assert "through the pipeline" in limits.rows[0].measure and "300 bookings over 40 doctors" in limits.rows[0].measure
    assert "340 × 429, 297/300 done" in limits.rows[0].baseline
    assert limits.rows[0].ratio == 0.915
    assert len(limits.details) == 3 and "55" in limits.details[2]  # the bare-thread table comes second
    tokens = run(module, 4, ctx)  # type: ignore[arg-type]
    assert [(row.measure.split(":")[0], row.result) for row in tokens.rows] == [
        ("doctor token", "**pass**"), ("account token", "**miss**")]
    assert "the doctor must reconnect" in tokens.rows[0].baseline
    assert tokens.rows[1].value == 2 and tokens.rows[1].ratio == pytest.approx(2 / 11)
    assert "grants per lifetime of wall time" in tokens.details[0]


def test_a_pipeline_arm_with_429s_or_unfinished_bookings_misses_the_target(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from telemed.benchmarks.context import Context
    from telemed.benchmarks.report import Section
    from telemed.benchmarks.scale import scale_named
    from telemed.benchmarks.zoom_items import _rates

    ctx = Context(services=None, scale=scale_named("tiny"), out=tmp_path, workdir=tmp_path)  # type: ignore[arg-type]
    row = {"arm": "telemed", "processes": 2, "threads": 8, "bookings": 300, "doctors": 40, "per_doctor": 8,
           "limit_per_second": 20.0, "done": 300, "creates_per_second": 18.6, "share_of_limit": 0.93,
           "answers_429": 0}
    for changes, result in (({}, "**pass**"), ({"answers_429": 1}, "**miss**"), ({"done": 299}, "**miss**"),
                            ({"share_of_limit": 0.89}, "**miss**")):
        section = Section(3, "zoom-limits", "Zoom limits")
        _rates(section, ctx, row | changes, row | {"arm": "unpaced"})
        assert section.rows[0].result == result, changes


def test_grants_while_valid_counts_later_grants_inside_each_lifetime() -> None:
    from telemed.benchmarks.zoom_log import grants_while_valid, overlap_summary

    single_flight = [0.0, 4.0, 8.0, 12.0]  # renewed 1 s before a 5 s token expires
    assert grants_while_valid(single_flight, 5.0) == [1, 1, 1, 0]
    per_process = [0.0, 0.1, 0.2, 4.0, 4.1, 4.2]  # three processes, each on its own
    assert grants_while_valid(per_process, 5.0) == [5, 4, 3, 2, 1, 0]
    assert grants_while_valid([0.0, 5.0], 5.0) == [0, 0]  # expired exactly when the next came
    assert grants_while_valid([3.0, 3.0], 5.0) == [1, 0]
    assert overlap_summary(single_flight, 5.0) == (1, 0.75)
    assert overlap_summary([], 5.0) == (0, 0.0)


def test_create_rates_and_429s_come_from_the_request_log() -> None:
    from telemed.benchmarks.zoom_log import (
        answers_429,
        busiest_second,
        created_arrivals,
        created_times,
        rate_between,
        route,
        shortest_span,
    )

    assert route("POST", "/v2/users/d-1@clinic.example/meetings") == "POST /users/{id}/meetings"
    assert route("GET", "/v2/meetings/123") == "GET /meetings/{id}"
    assert route("POST", "/oauth/token") == "POST /oauth/token"
    log = [{"method": "POST", "path": f"/v2/users/u{n}/meetings", "status": 201, "at": n / 16} for n in range(41)]
    log += [{"method": "POST", "path": "/v2/users/u/meetings", "status": 429, "at": 0.5},
            {"method": "GET", "path": "/v2/meetings/7", "status": 429, "at": 0.6},
            {"method": "GET", "path": "/v2/meetings/7", "status": 200, "at": 0.7},
            {"method": "POST", "path": "/v2/users/u/meetings", "status": 429, "at": 0.8}]
    times = created_times(log)
    assert len(times) == 41
    assert rate_between(times) == pytest.approx(16.0)
    assert rate_between(times, 0.0, 1.0) == pytest.approx(16.0)
    assert rate_between(times[:1]) is None
    assert busiest_second(times) == 16  # a sliding one-second window holds 16 of them
    assert busiest_second(sorted([*times, 0.99])) == 17
    assert shortest_span(times, 17) == pytest.approx(1.0)  # 17 of them: 16 gaps of 1/16 s
    assert shortest_span(sorted([*times, 0.99]), 17) == pytest.approx(1 - 1 / 16)  # one more inside a second
    assert shortest_span(times[:3], 17) is None
    log[0]["arrived"] = -0.5  # counted by arrival where the log has it
    assert created_arrivals(log)[:2] == [-0.5, 1 / 16]
    assert answers_429(log) == {"POST /users/{id}/meetings": 2, "GET /meetings/{id}": 1}


def test_the_zoom_bookings_spread_over_forty_doctors_below_the_daily_cap() -> None:
    from telemed.benchmarks.bookings import base_time, bench_booking
    from telemed.benchmarks.zoom_pipeline import per_doctor

    assert per_doctor(2000) == 50 and per_doctor(300) == 8 and per_doctor(40) == 1
    with pytest.raises(ValueError, match="100 per host per day"):
        per_doctor(4000)
    base = base_time()
    doctors = {bench_booking("Z-", n, base, per_doctor(2000))["appointment"]["doctor"]["id"] for n in range(2000)}
    assert len(doctors) == 40


def test_latency_sweep_points() -> None:
    from telemed.benchmarks.latency_bound import sweep_threads

    assert sweep_threads(8, "full") == [1, 2, 4, 8]
    assert sweep_threads(8, "small") == [4, 8]
    assert sweep_threads(4, "tiny") == [4]
    assert sweep_threads(1, "full") == [1]


def test_each_tenancy_clinic_books_with_doctors_of_its_own_domain() -> None:
    from datetime import UTC, datetime

    from telemed.benchmarks.tenancy import clinic_booking, clinic_ids, clinic_of_create
    from telemed.foundation.tenancy import check_clinic_id

    ids = clinic_ids(200)
    assert len(set(ids)) == 200 and all(check_clinic_id(c) == c for c in ids)
    event = clinic_booking("clinic-007", "T", 3, datetime(2030, 1, 1, tzinfo=UTC))
    assert event["appointment"]["doctor"]["email"] == "d-0@clinic-007.example"
    assert event["appointment"]["id"] == "T3"
    # A create in the simulator's request log names its clinic by the host's address.
    assert clinic_of_create("/v2/users/d-0%40clinic-007.example/meetings") == "clinic-007"
    assert clinic_of_create("/v2/users/d-0@clinic-007.example/meetings") == "clinic-007"
    assert clinic_of_create("/v2/users/someone%40elsewhere.org/meetings") is None
    assert clinic_of_create("/v2/meetings/123") is None
