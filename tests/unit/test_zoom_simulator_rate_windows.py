"""The simulator's per-second limit, counted by arrival time (pure: an injected clock)."""

from __future__ import annotations

from telemed.zoom.simulator.limits import RateWindows


def _windows(limit: float = 3) -> RateWindows:
    windows = RateWindows(clock=lambda: 100.0)
    windows.per_second = {"Medium": limit}
    return windows


def test_a_full_second_refuses_the_next_arrival_and_frees_after_it() -> None:
    windows = _windows()
    assert all(windows.admit("acct", "Medium", t) for t in (10.0, 10.3, 10.6))
    assert not windows.admit("acct", "Medium", 10.9)
    assert windows.admit("acct", "Medium", 11.01)  # 10.0 has left the window
    assert windows.admit("acct", "Light")  # no limit for that category
    assert windows.admit("other", "Medium", 10.9)  # another account has its own


def test_checked_late_an_early_arrival_counts_where_it_arrived() -> None:
    windows = _windows()
    assert all(windows.admit("acct", "Medium", t) for t in (10.0, 10.5, 11.2))
    # Arrived at 10.4 but checked last: no window around it would then hold more than three.
    assert windows.admit("acct", "Medium", 10.4)
    # (9.5, 10.5] now holds 10.0, 10.4 and 10.5: an arrival at 10.45 is refused, although
    # the window ending at its own arrival, (9.45, 10.45], holds only two.
    assert not windows.admit("acct", "Medium", 10.45)
    # Checked on the clock when no arrival is given.
    assert windows.admit("acct", "Medium") is True


def test_old_arrivals_are_forgotten() -> None:
    windows = _windows(limit=1)
    for second in range(1000):
        assert windows.admit("acct", "Medium", float(second))
    assert len(windows._windows[("acct", "Medium")]) <= 3
