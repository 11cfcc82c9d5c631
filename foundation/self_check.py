"""What ``telemed check`` and ``/readyz`` report: one finding per part, in words.

Only the type and the plain judgements live here; the checks themselves (which talk to
Redis, the database, Zoom and the mail server) are wired in ``telemed.selfcheck``.
"""

from __future__ import annotations

from dataclasses import dataclass

# Beyond this, our clock and a service's disagree enough to matter: lock and lease expiries
# are Redis's, retry and reminder times the database's and ours (docs/deploy.md).
CLOCK_SKEW_LIMIT_SECONDS = 2.0


@dataclass(frozen=True)
class Finding:
    name: str  # "redis", "store", "migrations", "clock", "zoom", "smtp"
    ok: bool
    detail: str  # what was found, in words; for a failure, what is wrong and what to do
    # A failure of a decisive part makes /readyz answer 503 (the web cannot take events);
    # Zoom and mail are not: accepted work waits in the store until they are back.
    decisive: bool = True


def skew_finding(against: str, offset: float, uncertainty: float) -> Finding:
    """``offset``: the service's clock minus ours (seconds), measured within ``uncertainty``."""
    if abs(offset) - uncertainty <= CLOCK_SKEW_LIMIT_SECONDS:
        return Finding("clock", True, f"{against} {offset:+.2f} s from this host")
    side = "ahead of" if offset > 0 else "behind"
    return Finding("clock", False, f"{against}'s clock is {abs(offset):.1f} s {side} this host's "
                                   f"(more than {CLOCK_SKEW_LIMIT_SECONDS:.0f} s): run NTP (chrony) on every host")


def measure_offset(local_before: float, remote: float, local_after: float) -> tuple[float, float]:
    """The remote clock minus ours, taking the round trip's midpoint; and the uncertainty."""
    return remote - (local_before + local_after) / 2, (local_after - local_before) / 2
