"""Figures read from the Zoom simulator's own records (request log, grant log).

Items 3 and 4 judge telemed by what Zoom saw, not by what the workers believe they sent:
the simulator stamps every request when it answers it and every token when it grants it.
Pure functions over those records, so the arithmetic is tested on its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

CREATE = ("POST", "/users/{id}/meetings")


def route(method: str, path: str) -> str:
    """``POST /v2/users/d-1@x/meetings`` → ``POST /users/{id}/meetings``: kinds without ids."""
    parts = [p for p in path.split("/") if p]
    if parts and parts[0] == "v2":
        parts = parts[1:]
    named = [p if (i % 2 == 0 or p in {"meetings", "token"}) else "{id}" for i, p in enumerate(parts)]
    return f"{method} /" + "/".join(named)


def is_create(entry: dict[str, Any]) -> bool:
    return route(entry["method"], entry["path"]) == " ".join(CREATE)


def created_times(log: Iterable[dict[str, Any]]) -> list[float]:
    """When Zoom answered each successful meeting create (201), in order."""
    return sorted(float(e["at"]) for e in log if e["status"] == 201 and is_create(e))


def created_arrivals(log: Iterable[dict[str, Any]]) -> list[float]:
    """When each successful create's request line reached Zoom (what its per-second limit
    counts), in order; the answer time where the log has no arrival."""
    return sorted(float(e.get("arrived", e["at"])) for e in log if e["status"] == 201 and is_create(e))


def answers_429(log: Iterable[dict[str, Any]]) -> dict[str, int]:
    """429 answers per endpoint kind, most first."""
    counts = Counter(route(e["method"], e["path"]) for e in log if e["status"] == 429)
    return dict(counts.most_common())


def busiest_second(times: Sequence[float]) -> int:
    """The most events inside any one-second window (``times`` sorted): what Zoom's
    sliding per-second limit compares with the plan's number."""
    best, low = 0, 0
    for high, moment in enumerate(times):
        while times[low] <= moment - 1.0:
            low += 1
        best = max(best, high - low + 1)
    return best


def shortest_span(times: Sequence[float], count: int) -> float | None:
    """The least time any ``count`` consecutive events took (``times`` sorted): for the
    plan's limit + 1 creates, how far under Zoom's one-second window the closest came
    (under 1 s: a 429). None when there are fewer than ``count``."""
    if count < 2 or len(times) < count:
        return None
    return min(times[i + count - 1] - times[i] for i in range(len(times) - count + 1))


def shortest_span_ms(times: Sequence[float], count: int) -> float | None:
    """:func:`shortest_span` in milliseconds, to a tenth, as the tables show it."""
    span = shortest_span(times, count)
    return None if span is None else round(span * 1000, 1)


def rate_between(times: Sequence[float], low: float = 0.1, high: float = 0.9) -> float | None:
    """Events per second between the ``low`` and ``high`` fractions of them (``times``
    sorted): start-up and the stragglers left out. ``rate_between(t, 0, 1)`` is first to
    last. None when there are too few events or no time between them."""
    if len(times) < 2:
        return None
    first, last = round(low * (len(times) - 1)), round(high * (len(times) - 1))
    span = times[last] - times[first]
    return (last - first) / span if last > first and span > 0 else None


def grants_while_valid(times: Iterable[float], lifetime: float) -> list[int]:
    """For each grant, how many other grants came while its token was still valid, i.e.
    in ``[t, t + lifetime)`` after it (a grant at the same instant counts for the
    earlier-listed one). Single-flight proactive refresh gives 1 (the successor, issued
    a margin before expiry); uncoordinated processes give about one per process."""
    ordered = sorted(times)
    counts: list[int] = []
    high = 0
    for index, moment in enumerate(ordered):
        high = max(high, index + 1)
        while high < len(ordered) and ordered[high] < moment + lifetime:
            high += 1
        counts.append(high - index - 1)
    return counts


def overlap_summary(times: Iterable[float], lifetime: float) -> tuple[int, float]:
    """(max, mean) of :func:`grants_while_valid`; (0, 0.0) without grants."""
    counts = grants_while_valid(times, lifetime)
    if not counts:
        return 0, 0.0
    return max(counts), sum(counts) / len(counts)
