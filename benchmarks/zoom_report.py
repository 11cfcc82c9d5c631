"""The Zoom limits benchmark's report: its rows and the Markdown table."""

from __future__ import annotations

from dataclasses import dataclass

from telemed.zoom.ratelimit import SAFETY, WINDOW_ALLOWANCE_MS


@dataclass
class TokenRow:
    token: str  # doctor | account
    arm: str
    processes: int
    threads: int
    seconds: float
    lifetime: float
    calls: int
    failed: int
    grants: int
    # Other grants issued while a grant's token was still valid (the target's measure),
    # over the run's grants: the most for any one grant, and the mean.
    grants_while_valid_max: int
    grants_while_valid_mean: float
    grants_per_lifetime_of_wall_time: float  # grants x lifetime / seconds
    invalid_grant: int
    grant_alive: bool | None  # doctor tokens only


@dataclass
class RateRow:
    arm: str
    processes: int
    threads: int
    seconds: float
    limit_per_second: float
    created: int
    created_per_second: float
    share_of_limit: float
    busiest_second: int
    least_ms_for_limit_plus_one: float | None  # Zoom's window: 1,000 ms; less is a 429
    answers_429: int


# Report --------------------------------------------------------------------------------


def markdown(tokens: list[TokenRow], rates: list[RateRow], note: str = "") -> str:
    lines = ["# Zoom limits benchmark", "",
             "Measured by `python -m benchmarks.zoom_limits` (the method is in its docstring). Each arm "
             "ran next to its baseline on the same machine, simulator and Redis.", ""]
    if note:
        lines += [note, ""]
    lines += ["## Token grants per lifetime", "",
              "| token | arm | processes x threads | seconds | lifetime (s) | calls | failed calls | grants | "
              "other grants while a token was valid (max / mean) | grants per lifetime of wall time | "
              "invalid_grant | doctor's grant survived |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in tokens:
        survived = "-" if t.grant_alive is None else ("yes" if t.grant_alive else "**no**: the doctor must reconnect")
        lines.append(f"| {t.token} | {t.arm} | {t.processes} x {t.threads} | {t.seconds:g} | {t.lifetime:g} | "
                     f"{t.calls} | {t.failed} | {t.grants} | {t.grants_while_valid_max} / "
                     f"{t.grants_while_valid_mean:g} | {t.grants_per_lifetime_of_wall_time:g} | {t.invalid_grant} | "
                     f"{survived} |")
    lines += ["", "Reading it: \"other grants while a token was valid\" counts, for each grant of the run (from "
              "the simulator's grant log), the grants issued before its token expired. telemed renews once, 1 s "
              "before expiry here (TELEMED_ZOOM_TOKEN_REFRESH_MARGIN_SECONDS, default 300 s, capped at half the "
              "lifetime), so exactly 1 (its successor) whatever the number of processes. \"Grants per lifetime of "
              "wall time\" (grants x lifetime / seconds) is about lifetime / (lifetime - margin) for any proactive "
              "refresh: 1.25 here, 1.09 with Zoom's one-hour tokens and the default margin. "
              "Rotation lets only one refresh per refresh token succeed, so uncoordinated refreshes of a doctor's token show up "
              "as invalid_grant answers, not extra grants: each one is a process that spent a dead refresh token, "
              "and a plugin that treats it as \"reconnect\" (naive-strict) loses the doctor's connection. Without "
              "rotation (the account token) every process fetches its own: about processes x more grants.", "",
              "## Meeting creates against the per-second limit (Medium)", "",
              "| arm | processes x threads | seconds | limit (/s) | created | created per second | share of limit | "
              "busiest second | least time for limit + 1 creates (ms) | 429 answers |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rates:
        lines.append(f"| {r.arm} | {r.processes} x {r.threads} | {r.seconds:g} | {r.limit_per_second:g} | "
                     f"{r.created} | {r.created_per_second:g} | {r.share_of_limit:.0%} | {r.busiest_second} | "
                     f"{r.least_ms_for_limit_plus_one if r.least_ms_for_limit_plus_one is not None else '—'} | "
                     f"{r.answers_429} |")
    lines += ["", f"telemed paces at {SAFETY:.0%} of the plan's limit (`zoom.ratelimit.SAFETY`) and lets no "
              f"limit + 1 calls go within {1 + WINDOW_ALLOWANCE_MS / 1000:g} s (see its docstring for why): Zoom "
              "counts arrivals per second, and jitter on the way can squeeze evenly sent calls into one window. "
              "The unpaced arm gets about as many meetings through by bouncing off the limit: every 429 is a "
              "call Zoom refused, and retried work that arrives late.", ""]
    return "\n".join(lines)
