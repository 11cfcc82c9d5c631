"""Completion counts over time, and the steady rate between 10 % and 90 % of them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Timeline:
    """``(monotonic time, completed)`` samples of one run."""

    total: int
    points: list[tuple[float, int]] = field(default_factory=list)

    def record(self, done: int, at: float | None = None) -> None:
        self.points.append((time.monotonic() if at is None else at, done))

    def crossing(self, count: float) -> float | None:
        """When the count first reached ``count``, interpolated between samples."""
        previous: tuple[float, int] | None = None
        for at, done in self.points:
            if done >= count:
                if previous is None or done == previous[1]:
                    return at
                t0, d0 = previous
                return t0 + (at - t0) * (count - d0) / (done - d0)
            previous = (at, done)
        return None

    def steady_rate(self, low: float = 0.1, high: float = 0.9) -> float | None:
        """Completions per second between ``low`` and ``high`` of the total: start-up and
        the last stragglers left out, the same way for every arm."""
        t_low, t_high = self.crossing(self.total * low), self.crossing(self.total * high)
        if t_low is None or t_high is None or t_high <= t_low:
            return None
        return self.total * (high - low) / (t_high - t_low)



def follow(timeline: Timeline, count: Callable[[], int], *, timeout: float, interval: float = 0.05,
           check: Callable[[], None] = lambda: None) -> float:
    """Sample ``count()`` until it reaches the total; returns the monotonic finish time."""
    deadline = time.monotonic() + timeout
    while True:
        done = count()
        timeline.record(done)
        if done >= timeline.total:
            return timeline.points[-1][0]
        check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {done} of {timeline.total} done after {timeout:.0f} s")
        time.sleep(interval)
