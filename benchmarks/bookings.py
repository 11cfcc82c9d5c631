"""The bookings every benchmark sends: new appointments at future times, spread over enough
doctors that no Zoom host gets near its 100 creates a day (the pipeline's per-host quota
would otherwise park the rest until tomorrow and the run would measure the quota)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from telemed.samples import PATIENTS, ZONES, booking

PER_DOCTOR = 40  # bookings per doctor (host), well under Zoom's 100 per host per day


def base_time() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=3)


def bench_booking(prefix: str, n: int, base: datetime, per_doctor: int = PER_DOCTOR) -> dict[str, Any]:
    """Booking number ``n``: appointment ``{prefix}{n}`` with doctor ``D-{n // per_doctor}``
    (item 3 sets ``per_doctor`` to spread its bookings over a fixed number of doctors)."""
    doctor = n // per_doctor
    return booking(f"{prefix}{n}", 1, base + timedelta(minutes=15 * (n % per_doctor), days=doctor % 30),
                   doctor=(f"D-{doctor}", f"Dr. Bench {doctor}"), patient=PATIENTS[n % len(PATIENTS)],
                   zone=ZONES[n % len(ZONES)])
