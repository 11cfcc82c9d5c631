"""The clock judgement of ``telemed check`` (plain functions)."""

from __future__ import annotations

from telemed.foundation.self_check import CLOCK_SKEW_LIMIT_SECONDS, measure_offset, skew_finding


def test_the_offset_is_taken_at_the_round_trips_midpoint() -> None:
    assert measure_offset(100.0, 105.5, 101.0) == (5.0, 0.5)


def test_a_small_skew_passes_and_a_large_one_is_named_with_its_direction() -> None:
    assert skew_finding("Redis", 0.3, 0.01).ok
    behind = skew_finding("the database", -7.25, 0.01)
    assert not behind.ok and "7.2 s behind this host's" in behind.detail and "NTP" in behind.detail
    assert "ahead of" in skew_finding("Redis", 30.0, 0.0).detail


def test_a_slow_round_trip_does_not_make_a_skew_out_of_nothing() -> None:
    # 3 s measured with 1.5 s of uncertainty: within the limit for all we know.
    assert skew_finding("Redis", CLOCK_SKEW_LIMIT_SECONDS + 1.0, 1.5).ok
