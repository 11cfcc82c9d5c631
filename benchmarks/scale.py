"""How big each benchmark runs. ``full`` is what the published table uses; ``small`` checks
the harness on a busy machine in about a minute or two; ``tiny`` is for the smoke test."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Scale:
    name: str
    processes: int
    threads: int
    # 1. broker efficiency
    bookings: int
    noop_messages: int
    profile_bookings: int
    ingest_concurrency: int
    # 2. latency-bound efficiency
    latency_bookings: int
    # 3. Zoom limits: bookings through the pipeline against Zoom Pro's limits, per arm
    zoom_bookings: int
    # 5. booking latency: open-loop requests per second for this many seconds, per arm
    request_rate: float
    request_seconds: float
    profile_web_seconds: float  # py-spy on telemed web under the same load, after the measured arms
    # 6. recovery: how long to wait for each arm before reporting "> cap"
    recovery_cap_ours: float
    recovery_cap_default: float
    recovery_done_cap: float
    recovery_trials: int
    # 8. noisy neighbour: clinic A's import; clinic B's bookings with A idle and during it
    noisy_a_bookings: int = 5_000
    noisy_b_idle: int = 30
    noisy_b_loaded: int = 60
    # 9. scale of tenancy: clinics, and bookings per clinic
    tenancy_clinics: int = 200
    tenancy_per_clinic: int = 20

    def with_workers(self, processes: int | None, threads: int | None) -> Scale:
        return replace(self, processes=processes or self.processes, threads=threads or self.threads)


def _cpus() -> int:
    return os.cpu_count() or 1


def scale_named(name: str) -> Scale:
    if name == "full":
        return Scale("full", processes=_cpus(), threads=8, bookings=1200, noop_messages=40_000,
                     profile_bookings=400, ingest_concurrency=16, latency_bookings=1200, zoom_bookings=2000,
                     request_rate=100, request_seconds=30, profile_web_seconds=10, recovery_cap_ours=60,
                     recovery_cap_default=120, recovery_done_cap=180, recovery_trials=3)
    if name == "small":
        return Scale("small", processes=_cpus(), threads=8, bookings=80, noop_messages=4_000,
                     profile_bookings=40, ingest_concurrency=8, latency_bookings=80, zoom_bookings=300,
                     request_rate=100, request_seconds=4, profile_web_seconds=3, recovery_cap_ours=30,
                     recovery_cap_default=15, recovery_done_cap=20, recovery_trials=1,
                     noisy_a_bookings=300, noisy_b_idle=8, noisy_b_loaded=12, tenancy_clinics=20,
                     tenancy_per_clinic=10)
    if name == "tiny":
        return Scale("tiny", processes=1, threads=4, bookings=8, noop_messages=400,
                     profile_bookings=6, ingest_concurrency=4, latency_bookings=8, zoom_bookings=40,
                     request_rate=100, request_seconds=0.5, profile_web_seconds=0, recovery_cap_ours=20,
                     recovery_cap_default=0.5, recovery_done_cap=0, recovery_trials=1,
                     noisy_a_bookings=40, noisy_b_idle=3, noisy_b_loaded=4, tenancy_clinics=4,
                     tenancy_per_clinic=4)
    raise ValueError(f"unknown scale {name!r}: small, full or tiny")
